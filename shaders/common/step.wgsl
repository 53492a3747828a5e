// Mirror of `StepState` in src/record.rs: what changes from one training step to the next, in one
// uniform block that kernels with a per-step input bind (their last binding). A stochastic
// kernel draws with key rng_key(seed, stream + stream_base); an optimizer's rate is its params'
// rate times `lr` (AdamW also scales by the bias correction `bias`); the loss kernels write at row
// block `slot % ring` of their outputs. Outside a step plan the state is (0, 1.0, 0, 0, 1.0), so
// a launcher's draws, rate and outputs are the ones its arguments name.

struct StepState {
    stream_base: u32,
    lr: f32,
    step: u32,
    slot: u32,
    bias: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}
