//! Train a small VGG-style CNN (or the MLP) on CIFAR-10 with quantized weights, activations and
//! gradients.
//!
//! cargo run --release --example cifar -- --data DIR [--scheme S] [--epochs N] [--model cnn|mlp]
//!     [--hidden N] [--batch B] [--lr LR] [--seed S] [--limit N] [--save FILE] [--json]
//!
//! DIR holds the official binary batches (data_batch_1.bin ... data_batch_5.bin, test_batch.bin,
//! from cifar-10-binary.tar.gz), or their parent `cifar-10-batches-bin`. CIFAR-10 is not embedded.
//! `--hidden N` (with `--model mlp`) gives the MLP two hidden layers of N (256 by default).

#[path = "shared/cli.rs"]
#[allow(dead_code)] // the helpers the other examples take
mod cli;

fn main() {
    cli::main("cifar");
}
