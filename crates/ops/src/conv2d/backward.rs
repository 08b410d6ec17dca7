//! The convolution backward pass on CPU: input, kernel and bias gradients in one sweep over
//! chunks of images, computing only the gradients that are asked for.

use std::ops::Range;

use rayon::prelude::*;

use crate::buffer::{Fresh, Uninit};
use crate::fork_join::{min_piece_len, worker_threads};
use crate::matmul::{matmul, Accumulate, MatMut, MatRef};
use crate::max_pool::{image_backward_from_winners, PoolGeometry};
use crate::simd::{vectorized, Kernel};

use super::direct::Direct;
use super::forward::{kernel_from_cin_major, kernel_to_cin_major};
use super::geometry::{images_per_chunk, ConvGeometry, Formulation};
use super::project::{to_channel_major, Planes};
use super::scratch::{prefix, with_scratch, Scratch};
use super::unfold::{add_assign, Unfolder};
use super::winograd::{Winograd, POSITIONS};

/// Which gradients of a convolution the caller needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dWanted {
    /// The gradient with respect to the input.
    pub x: bool,
    /// The gradient with respect to the kernel.
    pub kernel: bool,
    /// The gradient with respect to the bias.
    pub bias: bool,
}

/// The gradients asked for, each contiguous in its argument's layout.
#[derive(Debug, Default)]
pub(crate) struct Gradients {
    /// (N, H, W, Cin).
    pub x: Option<Vec<f32>>,
    /// (KH, KW, Cin, Cout).
    pub kernel: Option<Vec<f32>>,
    /// (Cout).
    pub bias: Option<Vec<f32>>,
}

/// What the forward pass saw and produced.
pub(crate) struct ForwardRecord<'a> {
    /// The input, contiguous NHWC (read only when the kernel gradient is wanted).
    pub x: &'a [f32],
    /// The kernel, contiguous (KH, KW, Cin, Cout).
    pub kernel: &'a [f32],
    /// The output, present when ReLU was fused and the gradient reaching the output is its own
    /// (its positive cells let the gradient through).
    pub relu_output: Option<&'a [f32]>,
}

/// The gradient reaching the convolution's output.
#[derive(Clone, Copy)]
pub(crate) enum OutputGrad<'a> {
    /// The output's own gradient, contiguous (N, OH, OW, Cout).
    Dense(&'a [f32]),
    /// The gradient of a max pooling whose only input is the output (see [`MaxPooled`]).
    MaxPooled(MaxPooled<'a>),
}

/// A max pooling of the convolution's output, its only reader, and the gradient of its result:
/// each chunk of images is routed back through the pooling in cache, by the windows' winners, so
/// the output's full-size gradient is never written.
#[derive(Clone, Copy)]
pub(crate) struct MaxPooled<'a> {
    /// The pooling's windows over one output image.
    pub pool: &'a PoolGeometry,
    /// Which cell of each window held its first maximum, per pooled value.
    pub winners: &'a [u8],
    /// The pooling's result, contiguous NHWC.
    pub pooled: &'a [f32],
    /// The gradient of the pooling's result.
    pub grad: &'a [f32],
    /// Whether ReLU was fused into the convolution (its mask is then the sign of each window's
    /// maximum).
    pub relu: bool,
}

/// One chunk's share of the kernel and bias gradients.
struct Partial {
    kernel_grad: Vec<f32>,
    bias_grad: Vec<f32>,
}

impl Partial {
    /// Zeros, sized for the gradients `wanted` (empty for the others), the kernel's in the
    /// layout `formulation` sums it in.
    fn new(g: &ConvGeometry, formulation: Formulation, wanted: Conv2dWanted) -> Self {
        let kernel_len = match formulation {
            Formulation::Winograd => POSITIONS * g.in_c * g.out_c,
            Formulation::Direct | Formulation::Unfold | Formulation::Project => g.kernel_len(),
        };
        Self {
            kernel_grad: vec![0.0; if wanted.kernel { kernel_len } else { 0 }],
            bias_grad: vec![0.0; if wanted.bias { g.out_c } else { 0 }],
        }
    }

    fn merge(mut self, other: Self) -> Self {
        add_assign(&mut self.kernel_grad, &other.kernel_grad);
        add_assign(&mut self.bias_grad, &other.bias_grad);
        self
    }
}

/// Gradients of `relu?(conv(x, kernel) + bias)` given the output gradient `dy` (contiguous
/// (N, OH, OW, Cout)).
pub(crate) fn backward(
    g: &ConvGeometry,
    record: &ForwardRecord<'_>,
    dy: &[f32],
    wanted: Conv2dWanted,
) -> Gradients {
    backward_from(g, record, OutputGrad::Dense(dy), wanted)
}

/// Gradients of `relu?(conv(x, kernel) + bias)` given the gradient reaching its output.
pub(crate) fn backward_from(
    g: &ConvGeometry,
    record: &ForwardRecord<'_>,
    output_grad: OutputGrad<'_>,
    wanted: Conv2dWanted,
) -> Gradients {
    if !(wanted.x || wanted.kernel || wanted.bias) {
        return Gradients::default();
    }
    let threads = worker_threads();
    let formulation = g.formulation();
    let chunk = images_per_chunk(g.batch, g.working_set_per_image(formulation), threads);
    let chunks = g.batch.div_ceil(chunk);
    let lowering = match formulation {
        Formulation::Direct => Lowering::Direct(Direct::new(g)),
        Formulation::Unfold => Lowering::Unfold(Unfolder::new(g)),
        Formulation::Project => Lowering::Project {
            planes: Planes::new(g),
            kernel: kernel_to_cin_major(g, record.kernel),
        },
        Formulation::Winograd => {
            let winograd = Winograd::new(g);
            let kernel = wanted
                .x
                .then(|| winograd.transform_kernel_transposed(record.kernel));
            Lowering::Winograd { winograd, kernel }
        }
    };
    let inner_threads = if chunks < threads { threads } else { 1 };

    let mut x_grad = wanted.x.then(|| Fresh::new(g.batch * g.in_image_len()));
    let x_grad_chunks: Vec<Option<Uninit<'_>>> = match x_grad.as_mut() {
        Some(all) => all.chunks(chunk * g.in_image_len()).map(Some).collect(),
        None => (0..chunks).map(|_| None).collect(),
    };

    let add_chunk = |index: usize, x_grad_chunk: Option<Uninit<'_>>, partial: &mut Partial| {
        let first = index * chunk;
        let images = (g.batch - first).min(chunk);
        let out_range = first * g.out_image_len()..(first + images) * g.out_image_len();
        with_scratch(|scratch| {
            let mut unpooled = std::mem::take(&mut scratch.output);
            let (dy, relu_output, wanted) = match output_grad {
                OutputGrad::Dense(dy) => (
                    &dy[out_range.clone()],
                    record.relu_output.map(|y| &y[out_range]),
                    wanted,
                ),
                OutputGrad::MaxPooled(pooled) => {
                    let dy = prefix(&mut unpooled, out_range.len());
                    pooled.unpool(first..first + images, dy, &mut partial.bias_grad);
                    // The bias gradient is summed, from the pooled gradient.
                    let rest = Conv2dWanted {
                        bias: false,
                        ..wanted
                    };
                    (&*dy, None, rest)
                }
            };
            let step = ChunkStep {
                g,
                wanted,
                images,
                // Read only for the kernel gradient: without it the record may hold no
                // input (a transposed convolution's forward is this pass for `x` alone).
                x: if wanted.kernel {
                    &record.x[first * g.in_image_len()..][..images * g.in_image_len()]
                } else {
                    &[]
                },
                kernel: record.kernel,
                dy,
                relu_output,
                inner_threads,
            };
            match &lowering {
                Lowering::Direct(direct) => step.direct(direct, scratch, partial, x_grad_chunk),
                Lowering::Unfold(unfolder) => {
                    step.unfolded(unfolder, scratch, partial, x_grad_chunk)
                }
                Lowering::Project { planes, kernel } => {
                    step.projected(planes, kernel, scratch, partial, x_grad_chunk)
                }
                Lowering::Winograd { winograd, kernel } => {
                    step.winograd(winograd, kernel.as_deref(), scratch, partial, x_grad_chunk)
                }
            }
            scratch.output = unpooled;
        });
    };
    // The chunks are cut into one run of consecutive chunks per thread; each run sums its share
    // of the kernel and bias gradients chunk after chunk, and the shares are added in run order:
    // the same sums on every run, whichever thread took which run (a running sum per thread
    // would add them in the order the threads happened to take them), and one accumulator per
    // thread rather than per chunk (the Winograd lowering's is 16 (Cin, Cout) matrices).
    let runs = chunks.min(threads).max(1);
    let per_run = chunks.div_ceil(runs);
    let mut chunk_runs: Vec<Vec<(usize, Option<Uninit<'_>>)>> = Vec::with_capacity(runs);
    for (index, x_grad_chunk) in x_grad_chunks.into_iter().enumerate() {
        if index % per_run == 0 {
            chunk_runs.push(Vec::with_capacity(per_run));
        }
        if let Some(run) = chunk_runs.last_mut() {
            run.push((index, x_grad_chunk));
        }
    }
    let partials: Vec<Partial> = chunk_runs
        .into_par_iter()
        .with_min_len(min_piece_len())
        .map(|run| {
            let mut partial = Partial::new(g, formulation, wanted);
            for (index, x_grad_chunk) in run {
                add_chunk(index, x_grad_chunk, &mut partial);
            }
            partial
        })
        .collect();
    let totals = partials
        .into_iter()
        .reduce(Partial::merge)
        .unwrap_or_else(|| Partial::new(g, formulation, wanted));

    let kernel = wanted.kernel.then(|| match &lowering {
        Lowering::Direct(_) | Lowering::Unfold(_) => totals.kernel_grad,
        Lowering::Project { .. } => kernel_from_cin_major(g, &totals.kernel_grad),
        Lowering::Winograd { winograd, .. } => winograd.kernel_grad(&totals.kernel_grad),
    });
    Gradients {
        x: x_grad.map(Fresh::into_written),
        kernel,
        bias: wanted.bias.then_some(totals.bias_grad),
    }
}

impl MaxPooled<'_> {
    /// The gradient of the convolution's output for `images`, written over `dy`: the pooled
    /// gradient routed to each window's winning cell (with ReLU, only from windows whose maximum
    /// is positive, which is the ReLU's mask); its sum per channel, the bias gradient, is added
    /// to `bias_grad` (when not empty).
    fn unpool(&self, images: Range<usize>, dy: &mut [f32], bias_grad: &mut [f32]) {
        let (in_len, out_len) = (self.pool.in_image_len(), self.pool.out_image_len());
        for (image, dy) in images.zip(dy.chunks_exact_mut(in_len)) {
            let pooled = image * out_len..(image + 1) * out_len;
            image_backward_from_winners(
                self.pool,
                &self.winners[pooled.clone()],
                (&self.pooled[pooled.clone()], &self.grad[pooled]),
                self.relu,
                dy,
                bias_grad,
            );
        }
    }
}

/// The lowering's tables, built once per call.
enum Lowering<'g> {
    Direct(Direct<'g>),
    Unfold(Unfolder<'g>),
    Project {
        planes: Planes<'g>,
        /// The kernel in (Cin, taps * Cout) order.
        kernel: Vec<f32>,
    },
    Winograd {
        winograd: Winograd,
        /// The transformed kernel, each of its matrices transposed, when the input gradient is
        /// wanted.
        kernel: Option<Vec<f32>>,
    },
}

/// The backward work of one chunk of images.
struct ChunkStep<'a> {
    g: &'a ConvGeometry,
    wanted: Conv2dWanted,
    images: usize,
    /// The chunk's input images (empty unless the kernel gradient is wanted).
    x: &'a [f32],
    /// The kernel in (taps * Cin, Cout) order.
    kernel: &'a [f32],
    /// The chunk's output gradient.
    dy: &'a [f32],
    /// The chunk's output, when ReLU was fused.
    relu_output: Option<&'a [f32]>,
    inner_threads: usize,
}

impl ChunkStep<'_> {
    /// Direct lowering: `dK += sum of row(x) ⊗ dy` summed from the images themselves, and the
    /// input gradient as the im2col lowering computes it.
    fn direct(
        &self,
        direct: &Direct<'_>,
        scratch: &mut Scratch,
        partial: &mut Partial,
        x_grad: Option<Uninit<'_>>,
    ) {
        let g = self.g;
        let Scratch {
            dy, cols, frame, ..
        } = scratch;
        let dy = self.masked_dy(dy, self.bias_sums(&mut partial.bias_grad));
        if self.wanted.kernel {
            for (image, image_dy) in self
                .x
                .chunks_exact(g.in_image_len())
                .zip(dy.chunks_exact(g.out_image_len()))
            {
                direct.add_kernel_grad(image, image_dy, frame, &mut partial.kernel_grad);
            }
        }
        if let Some(x_grad) = x_grad {
            self.input_grad_by_product(direct.unfolder(), dy, cols, frame, x_grad);
        }
    }

    /// im2col lowering: `dK += cols^T dy`, `dcols = dy K^T`, `dx = col2im(dcols)`.
    /// The kernel gradient accumulates in (taps * Cin, Cout) order.
    fn unfolded(
        &self,
        unfolder: &Unfolder<'_>,
        scratch: &mut Scratch,
        partial: &mut Partial,
        x_grad: Option<Uninit<'_>>,
    ) {
        let g = self.g;
        let Scratch {
            dy, cols, frame, ..
        } = scratch;
        let dy = self.masked_dy(dy, self.bias_sums(&mut partial.bias_grad));
        if self.wanted.kernel {
            let row_len = g.taps() * g.in_c;
            let rows = self.images * g.out_pixels();
            let cols = prefix(cols, rows * row_len);
            for (image, image_cols) in self
                .x
                .chunks_exact(g.in_image_len())
                .zip(cols.chunks_exact_mut(g.out_pixels() * row_len))
            {
                unfolder.unfold(image, frame, image_cols);
            }
            matmul(
                MatMut::row_major(&mut partial.kernel_grad, row_len, g.out_c),
                MatRef::row_major(cols, rows, row_len).t(),
                MatRef::row_major(dy, rows, g.out_c),
                Accumulate::Add,
                self.inner_threads,
            );
        }
        if let Some(x_grad) = x_grad {
            self.input_grad_by_product(unfolder, dy, cols, frame, x_grad);
        }
    }

    /// Winograd lowering: the output gradient's tiles transformed once, then the kernel
    /// gradient summed in the transformed domain and the input gradient by the adjoint of the
    /// input's transform (`kernel` is the transformed kernel, present when it is wanted).
    fn winograd(
        &self,
        winograd: &Winograd,
        kernel: Option<&[f32]>,
        scratch: &mut Scratch,
        partial: &mut Partial,
        x_grad: Option<Uninit<'_>>,
    ) {
        let Scratch {
            dy,
            cols,
            frame,
            products,
            ..
        } = scratch;
        let dy = self.masked_dy(dy, self.bias_sums(&mut partial.bias_grad));
        if !(self.wanted.kernel || x_grad.is_some()) {
            return;
        }
        let dm = winograd.transform_output_grad(dy, self.images, products);
        if self.wanted.kernel {
            winograd.add_kernel_grad_chunk(
                self.x,
                dm,
                (cols, frame),
                &mut partial.kernel_grad,
                self.inner_threads,
            );
        }
        if let (Some(x_grad), Some(kernel)) = (x_grad, kernel) {
            winograd.input_grad_chunk(dm, kernel, (cols, frame), x_grad, self.inner_threads);
        }
    }

    /// The bias gradient's sums this step adds to: `sums`, or none when the step is not to sum
    /// the bias gradient.
    fn bias_sums<'s>(&self, sums: &'s mut [f32]) -> &'s mut [f32] {
        if self.wanted.bias {
            sums
        } else {
            &mut []
        }
    }

    /// The chunk's output gradient let through by the fused ReLU (in `masked`, or `self.dy`
    /// itself without ReLU), its rows added to `bias_grad` (empty when not wanted).
    fn masked_dy<'m>(&'m self, masked: &'m mut Vec<f32>, bias_grad: &mut [f32]) -> &'m [f32] {
        let channels = self.g.out_c;
        match self.relu_output {
            Some(y) => {
                let masked = prefix(masked, self.dy.len());
                vectorized(MaskAndSum {
                    dy: self.dy,
                    y,
                    channels,
                    masked: &mut *masked,
                    sums: bias_grad,
                });
                masked
            }
            None => {
                if !bias_grad.is_empty() {
                    vectorized(AddRows {
                        rows: self.dy,
                        sums: bias_grad,
                    });
                }
                self.dy
            }
        }
    }

    /// `dcols = dy K^T` into `cols`, then `dx = col2im(dcols)` image by image.
    fn input_grad_by_product(
        &self,
        unfolder: &Unfolder<'_>,
        dy: &[f32],
        cols: &mut Vec<f32>,
        frame: &mut Vec<f32>,
        x_grad: Uninit<'_>,
    ) {
        let g = self.g;
        let row_len = g.taps() * g.in_c;
        let rows = self.images * g.out_pixels();
        let cols = prefix(cols, rows * row_len);
        matmul(
            MatMut::row_major(cols, rows, row_len),
            MatRef::row_major(dy, rows, g.out_c),
            MatRef::row_major(self.kernel, row_len, g.out_c).t(),
            Accumulate::Overwrite,
            self.inner_threads,
        );
        for (image_cols, image_grad) in cols
            .chunks_exact(g.out_pixels() * row_len)
            .zip(x_grad.pieces(g.in_image_len()))
        {
            unfolder.fold(image_cols, frame, image_grad);
        }
    }

    /// Projecting lowering: `dz = scatter(dy)`, `dK' += x^T dz`, `dx = dz K'^T` with the kernel
    /// `K'` in (Cin, taps * Cout) order, the order the kernel gradient accumulates in.
    fn projected(
        &self,
        planes: &Planes<'_>,
        projected_kernel: &[f32],
        scratch: &mut Scratch,
        partial: &mut Partial,
        x_grad: Option<Uninit<'_>>,
    ) {
        let g = self.g;
        let (rows_in, rows_out) = (self.images * g.in_pixels(), self.images * g.out_pixels());
        let dy = prefix(&mut scratch.dy, rows_out * g.out_c);
        to_channel_major(self.dy, self.relu_output, g.out_c, dy);
        if self.wanted.bias {
            for (sum, plane) in partial.bias_grad.iter_mut().zip(dy.chunks_exact(rows_out)) {
                *sum += plane.iter().sum::<f32>();
            }
        }
        if !(self.wanted.kernel || x_grad.is_some()) {
            return;
        }
        let row_len = g.taps() * g.out_c;
        let dz = prefix(&mut scratch.cols, rows_in * row_len);
        planes.scatter(self.images, dy, dz);
        if self.wanted.kernel {
            matmul(
                MatMut::row_major(&mut partial.kernel_grad, g.in_c, row_len),
                MatRef::row_major(self.x, rows_in, g.in_c).t(),
                MatRef::col_major(dz, rows_in, row_len),
                Accumulate::Add,
                self.inner_threads,
            );
        }
        if let Some(x_grad) = x_grad {
            // Zeroed while the chunk is in cache: the product then overwrites it.
            matmul(
                MatMut::row_major(x_grad.fill(0.0), rows_in, g.in_c),
                MatRef::col_major(dz, rows_in, row_len),
                MatRef::row_major(projected_kernel, g.in_c, row_len).t(),
                Accumulate::Overwrite,
                self.inner_threads,
            );
        }
    }
}

/// The output gradient `dy` let through by the fused ReLU (where its output `y` is positive),
/// written into `masked`, with each row of `channels` values added to `sums` (one value per
/// channel, or empty when the bias gradient is not wanted) in the same pass.
struct MaskAndSum<'a> {
    dy: &'a [f32],
    y: &'a [f32],
    channels: usize,
    masked: &'a mut [f32],
    sums: &'a mut [f32],
}

impl Kernel for MaskAndSum<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            dy,
            y,
            channels,
            masked,
            sums,
        } = self;
        let rows = masked
            .chunks_exact_mut(channels)
            .zip(dy.chunks_exact(channels).zip(y.chunks_exact(channels)));
        for (masked, (dy, y)) in rows {
            for (m, (&d, &y)) in masked.iter_mut().zip(dy.iter().zip(y)) {
                *m = if y > 0.0 { d } else { 0.0 };
            }
            // An empty `sums` (no bias gradient wanted) adds nothing.
            add_assign(sums, masked);
        }
    }
}

/// Adds each row of `rows` (rows of `sums.len()` values) to `sums`.
struct AddRows<'a> {
    rows: &'a [f32],
    sums: &'a mut [f32],
}

impl Kernel for AddRows<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self { rows, sums } = self;
        for row in rows.chunks_exact(sums.len()) {
            add_assign(sums, row);
        }
    }
}
