//! The gradient exchange over MPI (feature `mpi`; rsmpi over the system's MPI).
//!
//! Start one process per GPU with `mpirun`; each builds the same [`Trainer`] (same graph,
//! scheme, optimizer and seed: the same initial parameters) and wraps it in a [`Replica`].
//! Every step each replica takes its contiguous part of the global batch (the global batch and
//! its order do not depend on the number of ranks), computes its gradients
//! ([`Trainer::backward`]), encodes them on the GPU ([`Codec`]), gathers every rank's payload
//! (`MPI_Allgather`), decodes and averages them in rank order, and applies the identical update
//! ([`Trainer::apply_gradients`]): the replicas stay bit-identical, which
//! [`Replica::check_replicas`] verifies (a mismatch is an error).
//!
//! Errors end the run on every rank, never a hang: [`Replica::new`] compares a fingerprint of
//! every rank's configuration before anything else; a rank whose step fails still joins the
//! exchange, flagged, so every rank returns the error; a process that dies is ended by
//! `mpirun`, which then stops the others.

use super::{Codec, Exchange};
use crate::nn::{StepStats, Trainer};
use crate::{Error, Result};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

/// Bytes before each rank's payload: status, loss bits, correct count, padding.
const HEADER: usize = 16;
const OK: u32 = 0;
const NON_FINITE: u32 = 1;
const FAILED: u32 = 2;

/// One data-parallel replica: a trainer, its codec and the MPI communicator of all replicas.
pub struct Replica {
    trainer: Trainer,
    codec: Codec,
    world: SimpleCommunicator,
    rank: u32,
    ranks: u32,
    global_batch: usize,
    /// Set once a step failed on some rank: the replicas' step counters and batch-norm
    /// statistics may differ from then on.
    broken: Option<String>,
}

/// FNV-1a, 64 bits: a fingerprint, not a defence against an adversary.
fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= *b as u64;
        *h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Folds every parameter (name, shape, bits) of `t` into `h`.
fn hash_parameters(h: &mut u64, t: &Trainer) -> Result<()> {
    for (name, shape, v) in t.parameters()? {
        fnv(h, name.as_bytes());
        fnv(h, format!("{shape:?}").as_bytes());
        fnv(h, bytemuck::cast_slice(&v));
    }
    Ok(())
}

/// Gathers every rank's `h`; the first rank whose value differs from rank 0's, if any.
fn first_differing(world: &SimpleCommunicator, h: u64) -> Option<usize> {
    let mut all = vec![0u64; world.size() as usize];
    world.all_gather_into(&h, &mut all[..]);
    all.iter().position(|&x| x != all[0])
}

impl Replica {
    /// Joins `world` as replica `world.rank()` of `world.size()`, training `trainer` on global
    /// batches of `global_batch` samples (each rank takes `global_batch / ranks`; the trainer's
    /// own batch must be that). Every rank learns if any rank's model, parameters, scheme,
    /// optimizer, seed, exchange or global batch differs from rank 0's, and returns the same
    /// error.
    pub fn new(
        world: SimpleCommunicator,
        mut trainer: Trainer,
        exchange: Exchange,
        global_batch: usize,
    ) -> Result<Self> {
        let (rank, ranks) = (world.rank() as u32, world.size() as u32);
        let mut h = FNV_START;
        fnv(&mut h, trainer.graph().name().as_bytes());
        fnv(
            &mut h,
            format!("{:?}|{:?}|{}|{exchange}|{global_batch}", trainer.scheme(), trainer.optim(), trainer.seed())
                .as_bytes(),
        );
        hash_parameters(&mut h, &trainer)?;
        if let Some(r) = first_differing(&world, h) {
            return Err(Error::InvalidArgument(format!(
                "dist: rank {r}'s configuration (model, parameters, scheme, optimizer, seed, exchange or global batch) differs from rank 0's"
            )));
        }
        if !global_batch.is_multiple_of(ranks as usize) || global_batch == 0 {
            return Err(Error::InvalidArgument(format!(
                "dist: a global batch of {global_batch} does not split evenly over {ranks} ranks"
            )));
        }
        if trainer.optim().batch != global_batch / ranks as usize {
            return Err(Error::InvalidArgument(format!(
                "dist: each of {ranks} ranks trains on {} of the global batch of {global_batch}; the trainer's batch is {}",
                global_batch / ranks as usize,
                trainer.optim().batch
            )));
        }
        trainer.set_replica(rank, ranks)?;
        let codec = Codec::new(&trainer, exchange)?;
        Ok(Replica { trainer, codec, world, rank, ranks, global_batch, broken: None })
    }

    /// This replica's rank.
    pub fn rank(&self) -> u32 {
        self.rank
    }

    /// The number of replicas.
    pub fn ranks(&self) -> u32 {
        self.ranks
    }

    /// The trainer (evaluate, save, read parameters through it).
    pub fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    /// The trainer, to change: whatever makes one replica's parameters differ from the others'
    /// (a [`Trainer::set_parameter`] on one rank) makes [`Replica::check_replicas`] fail.
    pub fn trainer_mut(&mut self) -> &mut Trainer {
        &mut self.trainer
    }

    /// The codec.
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// Bytes each rank sends per step: its payload plus a 16-byte header, to each of the other
    /// ranks (an all-gather).
    pub fn bytes_per_step(&self) -> usize {
        self.codec.payload_bytes() + HEADER
    }

    /// This rank's contiguous part of a global batch: `(x, labels)`.
    pub fn shard<'a>(&self, x: &'a [f32], labels: &'a [u32]) -> Result<(&'a [f32], &'a [u32])> {
        let b = self.global_batch;
        if labels.is_empty() || !labels.len().is_multiple_of(b) || !x.len().is_multiple_of(b) {
            return Err(Error::Shape {
                op: "Replica::step",
                detail: format!("a global batch of {b} samples; got {} labels and {} values", labels.len(), x.len()),
            });
        }
        let (per_x, per_l) = (x.len() / b, labels.len() / b);
        let local = b / self.ranks as usize;
        let r = self.rank as usize;
        Ok((&x[r * local * per_x..(r + 1) * local * per_x], &labels[r * local * per_l..(r + 1) * local * per_l]))
    }

    /// One data-parallel step on a global batch (every rank passes the same one) with learning
    /// rate `lr`. Returns the mean loss and total correct count over the global batch. A failure
    /// on any rank (a NaN or infinity: [`Error::NonFinite`]) is returned by every rank, with no
    /// parameter changed anywhere; the replicas' step counters and batch-norm statistics may
    /// differ afterwards, so every later step is refused (restart from a checkpoint).
    pub fn step(&mut self, x: &[f32], labels: &[u32], lr: f32) -> Result<StepStats> {
        if let Some(why) = &self.broken {
            return Err(Error::InvalidArgument(format!("dist: the run cannot go on after {why}")));
        }
        let step = self.trainer.steps();
        let (xs, ys) = self.shard(x, labels)?;
        let local = self.trainer.backward(xs, ys);
        let (status, stats, payload) = match &local {
            Ok(s) => match self.codec.encode(step, self.rank, self.ranks) {
                Ok(p) => (OK, *s, p),
                Err(_) => (FAILED, *s, vec![0; self.codec.payload_bytes()]),
            },
            Err(Error::NonFinite { .. }) => (NON_FINITE, StepStats::default(), vec![0; self.codec.payload_bytes()]),
            Err(_) => (FAILED, StepStats::default(), vec![0; self.codec.payload_bytes()]),
        };
        let mut send = Vec::with_capacity(HEADER + payload.len());
        for w in [status, stats.loss.to_bits(), stats.correct, 0] {
            send.extend(w.to_le_bytes());
        }
        send.extend(&payload);
        let mut recv = vec![0u8; send.len() * self.ranks as usize];
        self.world.all_gather_into(&send[..], &mut recv[..]);
        let parts: Vec<&[u8]> = recv.chunks_exact(send.len()).collect();
        let word = |p: &[u8], i: usize| u32::from_le_bytes([p[4 * i], p[4 * i + 1], p[4 * i + 2], p[4 * i + 3]]);
        if let Some(r) = parts.iter().position(|p| word(p, 0) != OK) {
            let what = if word(parts[r], 0) == NON_FINITE { "a NaN or infinity" } else { "an error" };
            self.broken = Some(format!("{what} on rank {r} at step {step}"));
            local?;
            let detail = format!("dist: {what} on rank {r}; no replica was updated");
            return Err(if word(parts[r], 0) == NON_FINITE {
                Error::NonFinite { step, detail }
            } else {
                Error::InvalidArgument(detail)
            });
        }
        let mean = self.codec.decode_mean(&parts.iter().map(|p| &p[HEADER..]).collect::<Vec<_>>())?;
        self.codec.write(&mean)?;
        self.trainer.apply_gradients(lr)?;
        let mut out = stats;
        // The global batch's loss: the ranks' means averaged in rank order; correct summed.
        let loss: f32 = parts.iter().map(|p| f32::from_bits(word(p, 1))).sum::<f32>() / self.ranks as f32;
        out.loss = loss;
        out.correct = parts.iter().map(|p| word(p, 2)).sum();
        Ok(out)
    }

    /// Makes the replicas agree on their batch-norm running statistics (each rank's, averaged
    /// in rank order), then checks that every parameter is bit-identical on every rank: a
    /// mismatch is an error on every rank. Call it every few hundred steps and before
    /// evaluating or saving.
    pub fn check_replicas(&mut self) -> Result<()> {
        let trained: std::collections::HashSet<String> = self.codec.names().into_iter().map(str::to_string).collect();
        let params = self.trainer.parameters()?;
        for (name, _, v) in params.iter().filter(|p| !trained.contains(&p.0)) {
            let mut all = vec![0f32; v.len() * self.ranks as usize];
            self.world.all_gather_into(&v[..], &mut all[..]);
            let mut mean = vec![0f32; v.len()];
            for part in all.chunks_exact(v.len()) {
                for (m, x) in mean.iter_mut().zip(part) {
                    *m += x;
                }
            }
            let n = self.ranks as f32;
            mean.iter_mut().for_each(|m| *m /= n);
            self.trainer.set_parameter(name, &mean)?;
        }
        let mut h = FNV_START;
        hash_parameters(&mut h, &self.trainer)?;
        if let Some(r) = first_differing(&self.world, h) {
            return Err(Error::InvalidArgument(format!(
                "dist: the replicas diverged: rank {r}'s parameters differ from rank 0's after step {}",
                self.trainer.steps()
            )));
        }
        Ok(())
    }

    /// Ends every rank's process at once (`MPI_Abort`), after this rank printed why: what a
    /// program does when an error leaves it nothing to agree on.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
