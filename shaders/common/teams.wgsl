// The teams layout of the elementwise kernels on CPU adapters (src/kernels/mod.rs,
// VecPath::Teams): a workgroup's 256 threads in teams of TEAM consecutive ones, each team a run
// of RUN vec4s, its threads on consecutive vec4s (thread k of a team takes k, k + TEAM, ...). On
// lavapipe, which runs a workgroup's threads 8 at a time in SIMD lanes, a team is one such batch,
// its loads and stores land on consecutive addresses and the workgroups are few. Any mapping is
// correct; only the speed assumes TEAM matches the adapter's batch. Both constants are set by the
// launchers (VecPath::entry), which size the grid from the same numbers.

override TEAM: u32 = 8u;
override RUN: u32 = 256u;

// The vec4s below n that thread lid of workgroup wg walks: from .x, below .y, stepping by TEAM.
fn team_span(wg: vec3<u32>, nwg: vec3<u32>, lid: u32, n: u32) -> vec2<u32> {
    let team = (wg.x + wg.y * nwg.x) * (256u / TEAM) + lid / TEAM;
    return vec2<u32>(team * RUN + lid % TEAM, min(team * RUN + RUN, n));
}
