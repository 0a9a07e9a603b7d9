//! Training building blocks: batched layers on row-major `[batch, features]` matrices, losses,
//! initialisation, optimisers, learning-rate schedules and regularisers.

pub mod activation;
pub mod batchnorm;
pub mod dense;
pub mod dropout;
pub mod init;
pub mod loss;
pub mod matmul;
pub mod network;
pub mod optim;
pub mod regularize;
pub mod schedule;
pub mod sparsity;
