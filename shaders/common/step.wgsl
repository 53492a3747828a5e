// Mirror of `StepState` in src/record.rs: what changes from one training step to the next, in one
// uniform block that kernels with a per-step input bind (their last binding). A stochastic
// kernel draws with key rng_key(seed, stream + stream_base); SGD's rate is its params' rate times
// `lr`; the loss kernels write at row block `slot % ring` of their outputs. Outside a step plan the
// state is (0, 1.0, 0, 0), so a launcher's draws, rate and outputs are the ones its arguments name.

struct StepState {
    stream_base: u32,
    lr: f32,
    step: u32,
    slot: u32,
}
