//! Winograd's minimal filtering F(2×2, 3×3) (Lavin and Gray, "Fast Algorithms for Convolutional
//! Neural Networks", 2016), for 3×3 convolutions with stride 1 over enough channels.
//!
//! The output is cut into 2×2 tiles, each reading a 4×4 tile `d` of the zero-framed input. With
//! `V = Bᵀ d B` (each input channel's tile transformed) and `U = G g Gᵀ` (each channel pair's
//! 3×3 kernel `g` transformed), an output tile is `Aᵀ M A` where `M = Σ_ci U ⊙ V`: 16 products
//! per tile and channel pair instead of 36. For each of the 16 positions of a transformed tile,
//! the sum over input channels is one (tiles × Cin) by (Cin × Cout) matrix product.
//!
//! The backward pass is the adjoint of each step. The output gradient's tiles are transformed
//! once, `dM = A dY Aᵀ` (zero past the output's edge). The kernel gradient is `Gᵀ dU G` with
//! `dU = Σ_tiles V ⊙ dM`, again 16 matrix products (`Vᵀ dM`); the input gradient adds each tile's
//! `B dV Bᵀ`, with `dV = dM Uᵀ` (16 more), into the 4×4 input tile it came from (neighbouring
//! tiles overlap by two pixels). Each product multiplies as much as the forward's.

use std::mem::MaybeUninit;

use crate::buffer::Uninit;
use crate::matmul::{matmul, Accumulate, MatMut, MatRef};
use crate::simd::{vectorized, Kernel};

use super::direct::LANES;
use super::geometry::ConvGeometry;
use super::scratch::prefix;

/// Positions of a transformed 4×4 tile, one matrix product each.
pub(crate) const POSITIONS: usize = 16;

/// The fewest input and output channels for which the matrix products outweigh the transforms.
const MIN_CHANNELS: usize = 16;

/// One lane of each of [`LANES`] channels: a block's column of values.
type Lanes = [f32; LANES];

/// `Bᵀ d` for one column of an input tile.
#[inline(always)]
fn input_1d([d0, d1, d2, d3]: [f32; 4]) -> [f32; 4] {
    [d0 - d2, d1 + d2, d2 - d1, d1 - d3]
}

/// `B v` for one column of a transformed input gradient tile (the adjoint of [`input_1d`]).
#[inline(always)]
fn input_grad_1d([v0, v1, v2, v3]: [f32; 4]) -> [f32; 4] {
    [v0, v1 - v2 + v3, v1 + v2 - v0, -v3]
}

/// `G g` for one column of a kernel.
#[inline(always)]
fn kernel_1d([g0, g1, g2]: [f32; 3]) -> [f32; 4] {
    let outer = g0 + g2;
    [g0, (outer + g1) * 0.5, (outer - g1) * 0.5, g2]
}

/// `Aᵀ m` for one column of a product tile.
#[inline(always)]
fn output_1d([m0, m1, m2, m3]: [f32; 4]) -> [f32; 2] {
    [m0 + m1 + m2, m1 - m2 - m3]
}

/// `A dy` for one column of an output gradient tile (the adjoint of [`output_1d`]).
#[inline(always)]
fn output_grad_1d([y0, y1]: [f32; 2]) -> [f32; 4] {
    [y0, y0 + y1, y0 - y1, -y1]
}

/// `T s Tᵀ` for the 1-D transform `T` (`transform`) of the square tile `s` of one channel:
/// `T` down each column, then along each row.
fn separable<const I: usize, const O: usize>(
    square: [[f32; I]; I],
    transform: impl Fn([f32; I]) -> [f32; O],
) -> [[f32; O]; O] {
    let columns: [[f32; O]; I] = std::array::from_fn(|j| transform(square.map(|row| row[j])));
    std::array::from_fn(|o| transform(std::array::from_fn(|j| columns[j][o])))
}

/// `U = G g Gᵀ` as a matrix over the kernel's taps: `U[position] = Σ_tap w[position][tap] g[tap]`
/// (each row the transform of a kernel that is one at a single tap). Its transpose maps a
/// transformed kernel gradient back onto the taps, `Gᵀ dU G`.
fn kernel_weights() -> [[f32; 9]; POSITIONS] {
    let mut weights = [[0.0; 9]; POSITIONS];
    for tap in 0..9 {
        let mut unit = [[0.0; 3]; 3];
        unit[tap / 3][tap % 3] = 1.0;
        for (position, &w) in separable(unit, kernel_1d).iter().flatten().enumerate() {
            weights[position][tap] = w;
        }
    }
    weights
}

/// `to[o] = Σ_i weights[o][i] from[i]` over `O` planes of `to` and `I` planes of `from`, each
/// plane a run of equal length: the kernel's transforms, once per call.
struct MixPlanes<'a, const I: usize, const O: usize> {
    weights: [[f32; I]; O],
    from: &'a [f32],
    to: &'a mut [f32],
}

impl<const I: usize, const O: usize> Kernel for MixPlanes<'_, I, O> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self { weights, from, to } = self;
        let plane = from.len() / I;
        for (to, weights) in to.chunks_exact_mut(plane).zip(weights) {
            to.fill(0.0);
            for (from, w) in from.chunks_exact(plane).zip(weights) {
                if w != 0.0 {
                    for (t, &f) in to.iter_mut().zip(from) {
                        *t += w * f;
                    }
                }
            }
        }
    }
}

// The per-tile transforms below run once per tile and block of [`LANES`] channels, inside
// `vectorized`. They are written as loops over the lanes of small local arrays, which LLVM turns
// into vector instructions on registers. Moving whole blocks by value (arrays of arrays returned
// from functions) compiles to `memcpy` calls and stack round trips instead, and
// `array::from_fn` or `map` call their closure out of line, compiled outside `vectorized`'s
// features: both were several times slower.

/// For each of the first `len` lanes, `out[k][l] = transform(x)[k]` where `x[i] = inputs[i][l]`.
#[inline(always)]
fn lanewise<const I: usize, const O: usize>(
    mut inputs: [&[f32]; I],
    len: usize,
    out: &mut [Lanes; O],
    transform: impl Fn([f32; I]) -> [f32; O],
) {
    for input in inputs.iter_mut() {
        *input = &input[..len];
    }
    for l in 0..len {
        let mut x = [0.0; I];
        for (x, input) in x.iter_mut().zip(&inputs) {
            *x = input[l];
        }
        for (out, y) in out.iter_mut().zip(transform(x)) {
            out[l] = y;
        }
    }
}

/// Row `i` of a tile held as its columns: `columns[j][i]` for every column `j`.
#[inline(always)]
fn row_of<const N: usize, const M: usize>(columns: &[[Lanes; M]; N], i: usize) -> [&[f32]; N] {
    let mut row = [&columns[0][0][..]; N];
    for (cell, column) in row.iter_mut().zip(columns) {
        *cell = &column[i][..];
    }
    row
}

/// `T s Tᵀ` lane by lane for one block of channels: `cell(i, j)` holds the lanes of the square
/// tile's cell (i, j) (from its start), and `emit(i, j, values)` receives the result's cell (i, j).
#[inline(always)]
fn separable_lanes<'s, const I: usize, const O: usize, T>(
    cell: impl Fn(usize, usize) -> &'s [f32],
    len: usize,
    transform: T,
    mut emit: impl FnMut(usize, usize, &Lanes),
) where
    T: Fn([f32; I]) -> [f32; O] + Copy,
{
    // columns[j][i] = (T s)[i][j].
    let mut columns = [[[0.0; LANES]; O]; I];
    for (j, column) in columns.iter_mut().enumerate() {
        let mut inputs = [&[][..]; I];
        for (i, input) in inputs.iter_mut().enumerate() {
            *input = cell(i, j);
        }
        lanewise(inputs, len, column, transform);
    }
    let mut row = [[0.0; LANES]; O];
    for i in 0..O {
        lanewise(row_of(&columns, i), len, &mut row, transform);
        for (j, values) in row.iter().enumerate() {
            emit(i, j, values);
        }
    }
}

/// A tile of an output image: its image in the chunk and its place in the image's tile grid.
#[derive(Clone, Copy)]
struct TileAt {
    image: usize,
    ty: usize,
    tx: usize,
}

/// Copies the first `len` lanes of `from` into `to`: a fixed-size copy for a full block (a
/// variable-length one compiles to a `memcpy` call).
#[inline(always)]
fn store(from: &Lanes, len: usize, to: &mut [f32]) {
    if len == LANES {
        to[..LANES].copy_from_slice(from);
    } else {
        for (to, &from) in to[..len].iter_mut().zip(from) {
            *to = from;
        }
    }
}

/// Runs `work` with the block's lane count, as a constant for a full block so that its loops
/// compile to straight vector code.
#[inline(always)]
fn with_lanes(lanes: usize, mut work: impl FnMut(usize)) {
    if lanes == LANES {
        work(LANES)
    } else {
        work(lanes)
    }
}

/// One convolution's tiling, built once per call.
pub(crate) struct Winograd {
    g: ConvGeometry,
    /// Output tiles down and across an image.
    tiles_h: usize,
    tiles_w: usize,
}

impl Winograd {
    /// Whether `g` is a 3×3 convolution with stride 1, no dilation and channels enough.
    pub(crate) fn applies(g: &ConvGeometry) -> bool {
        let p = &g.params;
        (g.k_h, g.k_w) == (3, 3)
            && p.strides == (1, 1)
            && p.dilation == (1, 1)
            && g.in_c >= MIN_CHANNELS
            && g.out_c >= MIN_CHANNELS
    }

    /// The tiling of `g`, for which [`Self::applies`] holds.
    pub(crate) fn new(g: &ConvGeometry) -> Self {
        debug_assert!(Self::applies(g), "{g:?}");
        Self {
            g: g.clone(),
            tiles_h: g.out_h.div_ceil(2),
            tiles_w: g.out_w.div_ceil(2),
        }
    }

    /// Output tiles of one image.
    pub(crate) fn tiles_per_image(&self) -> usize {
        self.tiles_h * self.tiles_w
    }

    /// Scratch elements one image takes: its transformed input and products.
    pub(crate) fn scratch_per_image(g: &ConvGeometry) -> usize {
        Self::new(g).tiles_per_image() * POSITIONS * (g.in_c + g.out_c)
    }

    /// `U = G g Gᵀ` for every channel pair of a (3, 3, Cin, Cout) kernel: 16 (Cin, Cout)
    /// matrices, one per position of a transformed tile.
    pub(crate) fn transform_kernel(&self, kernel: &[f32]) -> Vec<f32> {
        let mut u = vec![0.0; POSITIONS * self.g.in_c * self.g.out_c];
        vectorized(MixPlanes {
            weights: kernel_weights(),
            from: kernel,
            to: &mut u,
        });
        u
    }

    /// The [`Self::transform_kernel`] `U` with each of its 16 matrices transposed, (Cout, Cin):
    /// the right operand of the input gradient's products, laid out once per pass so that the
    /// products read it row by row instead of packing its transpose again for every chunk.
    pub(crate) fn transform_kernel_transposed(&self, kernel: &[f32]) -> Vec<f32> {
        let (cin, cout) = (self.g.in_c, self.g.out_c);
        let u = self.transform_kernel(kernel);
        let mut ut = vec![0.0; u.len()];
        for (u, ut) in u
            .chunks_exact(cin * cout)
            .zip(ut.chunks_exact_mut(cin * cout))
        {
            for (i, row) in u.chunks_exact(cout).enumerate() {
                for (o, &value) in row.iter().enumerate() {
                    ut[o * cin + i] = value;
                }
            }
        }
        ut
    }

    /// `relu?(conv(x, kernel) + bias)` of the contiguous images `x` into `y`, their outputs, with
    /// `u` the [`Self::transform_kernel`] of the kernel. `v`, `m` and `frame` are scratch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward_chunk(
        &self,
        x: &[f32],
        u: &[f32],
        bias: Option<&[f32]>,
        relu: bool,
        scratch: TileScratch<'_>,
        y: Uninit<'_>,
        threads: usize,
    ) {
        let g = &self.g;
        let images = x.len() / g.in_image_len();
        let tiles = images * self.tiles_per_image();
        let v = self.transform_inputs(x, scratch.frame, scratch.v);
        let m = prefix(scratch.m, POSITIONS * tiles * g.out_c);
        for (position, m) in m.chunks_exact_mut(tiles * g.out_c).enumerate() {
            matmul(
                MatMut::row_major(m, tiles, g.out_c),
                MatRef::row_major(&v[position * tiles * g.in_c..], tiles, g.in_c),
                MatRef::row_major(&u[position * g.in_c * g.out_c..], g.in_c, g.out_c),
                Accumulate::Overwrite,
                threads,
            );
        }
        debug_assert_eq!(y.len(), images * g.out_image_len());
        let write = |out: &mut [MaybeUninit<f32>]| {
            vectorized(OutputTiles {
                w: self,
                m,
                tiles,
                bias,
                relu,
                out,
            })
        };
        // SAFETY: `OutputTiles` writes every channel of every output pixel of every image (the
        // tiles cover each image's output, and the cells past its edge are not written).
        unsafe { y.write_with(write) };
    }

    /// `dM = A dY Aᵀ` of every tile of the output gradient `dy` of `images` images (ReLU's mask
    /// applied), as 16 row-major (tiles, Cout) matrices in `dm`: what both gradients read.
    pub(crate) fn transform_output_grad<'m>(
        &self,
        dy: &[f32],
        images: usize,
        dm: &'m mut Vec<f32>,
    ) -> &'m [f32] {
        let dm = prefix(
            dm,
            POSITIONS * images * self.tiles_per_image() * self.g.out_c,
        );
        vectorized(OutputGradTiles {
            w: self,
            dy,
            images,
            dm: &mut *dm,
        });
        dm
    }

    /// Adds the kernel gradient of the contiguous images `x`, in the transformed domain (16
    /// (Cin, Cout) matrices, see [`Self::kernel_grad`]), to `du`, given their transformed output
    /// gradient `dm`. `v` and `frame` are scratch.
    pub(crate) fn add_kernel_grad_chunk(
        &self,
        x: &[f32],
        dm: &[f32],
        (v, frame): (&mut Vec<f32>, &mut Vec<f32>),
        du: &mut [f32],
        threads: usize,
    ) {
        let g = &self.g;
        let tiles = x.len() / g.in_image_len() * self.tiles_per_image();
        let v = self.transform_inputs(x, frame, v);
        for (position, du) in du.chunks_exact_mut(g.in_c * g.out_c).enumerate() {
            matmul(
                MatMut::row_major(du, g.in_c, g.out_c),
                MatRef::row_major(&v[position * tiles * g.in_c..], tiles, g.in_c).t(),
                MatRef::row_major(&dm[position * tiles * g.out_c..], tiles, g.out_c),
                Accumulate::Add,
                threads,
            );
        }
    }

    /// Writes the input gradient of a chunk into `x_grad`, given its transformed output gradient
    /// `dm` and the [`Self::transform_kernel_transposed`] `ut`: `dV = dM Uᵀ` (16 products), then each tile's
    /// `B dV Bᵀ` added into a framed image where the tiles overlap, and the frame's interior
    /// written out. `dv` and `frame` are scratch.
    pub(crate) fn input_grad_chunk(
        &self,
        dm: &[f32],
        ut: &[f32],
        (dv, frame): (&mut Vec<f32>, &mut Vec<f32>),
        x_grad: Uninit<'_>,
        threads: usize,
    ) {
        let g = &self.g;
        let images = x_grad.len() / g.in_image_len();
        let tiles = images * self.tiles_per_image();
        let dv = prefix(dv, POSITIONS * tiles * g.in_c);
        for (position, dv) in dv.chunks_exact_mut(tiles * g.in_c).enumerate() {
            matmul(
                MatMut::row_major(dv, tiles, g.in_c),
                MatRef::row_major(&dm[position * tiles * g.out_c..], tiles, g.out_c),
                MatRef::row_major(&ut[position * g.out_c * g.in_c..], g.out_c, g.in_c),
                Accumulate::Overwrite,
                threads,
            );
        }
        let (frame_h, frame_w) = self.frame_dims();
        let frame_row = frame_w * g.in_c;
        let (top, left) = (g.params.padding.top, g.params.padding.left);
        for (image, x_grad) in x_grad.pieces(g.in_image_len()).enumerate() {
            frame.clear();
            frame.resize(frame_h * frame_row, 0.0);
            vectorized(InputGradTiles {
                w: self,
                dv,
                first_tile: image * self.tiles_per_image(),
                tiles,
                frame: &mut *frame,
            });
            let interior = frame
                .chunks_exact(frame_row)
                .skip(top)
                .take(g.in_h)
                .map(|row| &row[left * g.in_c..][..g.in_w * g.in_c]);
            x_grad.concat(interior);
        }
    }

    /// The (3, 3, Cin, Cout) kernel gradient `Gᵀ dU G` from its transformed `du`, the sum of
    /// [`Self::add_kernel_grad_chunk`] over every chunk.
    pub(crate) fn kernel_grad(&self, du: &[f32]) -> Vec<f32> {
        let weights = kernel_weights();
        let transposed: [[f32; POSITIONS]; 9] =
            std::array::from_fn(|tap| weights.map(|row| row[tap]));
        let mut kernel_grad = vec![0.0; self.g.kernel_len()];
        vectorized(MixPlanes {
            weights: transposed,
            from: du,
            to: &mut kernel_grad,
        });
        kernel_grad
    }

    /// `V = Bᵀ d B` of every tile of the contiguous images `x`, as 16 row-major (tiles, Cin)
    /// matrices in `v`.
    fn transform_inputs<'v>(
        &self,
        x: &[f32],
        frame: &mut Vec<f32>,
        v: &'v mut Vec<f32>,
    ) -> &'v [f32] {
        let g = &self.g;
        let images = x.len() / g.in_image_len();
        let tiles = images * self.tiles_per_image();
        let v = prefix(v, POSITIONS * tiles * g.in_c);
        for (image, pixels) in x.chunks_exact(g.in_image_len()).enumerate() {
            self.fill_frame(pixels, frame);
            vectorized(InputTiles {
                w: self,
                frame,
                first_tile: image * self.tiles_per_image(),
                tiles,
                v: &mut *v,
            });
        }
        v
    }

    /// The frame's (height, width): two more than the tiles' output, so every tile's 4×4 input
    /// is inside it.
    fn frame_dims(&self) -> (usize, usize) {
        (2 * self.tiles_h + 2, 2 * self.tiles_w + 2)
    }

    /// The index of `tile` among the chunk's tiles.
    fn tile_index(&self, tile: TileAt) -> usize {
        (tile.image * self.tiles_h + tile.ty) * self.tiles_w + tile.tx
    }

    /// Calls `visit(tile, block, len)` for every tile of `images` images and every block of
    /// `channels` channels from `block`, `len` of them (a constant for a full block).
    #[inline(always)]
    fn for_each_tile_block(
        &self,
        images: usize,
        channels: usize,
        mut visit: impl FnMut(TileAt, usize, usize),
    ) {
        for image in 0..images {
            for ty in 0..self.tiles_h {
                for tx in 0..self.tiles_w {
                    let tile = TileAt { image, ty, tx };
                    for block in (0..channels).step_by(LANES) {
                        with_lanes(
                            (channels - block).min(LANES),
                            #[inline(always)]
                            |len| visit(tile, block, len),
                        );
                    }
                }
            }
        }
    }

    /// Copies the image `x` into a frame of zeros at the padding's offset.
    fn fill_frame(&self, x: &[f32], frame: &mut Vec<f32>) {
        let g = &self.g;
        let (frame_h, frame_w) = self.frame_dims();
        let (top, left) = (g.params.padding.top, g.params.padding.left);
        let frame_row = frame_w * g.in_c;
        frame.clear();
        frame.resize(frame_h * frame_row, 0.0);
        for (row, pixels) in x.chunks_exact(g.in_w * g.in_c).enumerate() {
            frame[(top + row) * frame_row + left * g.in_c..][..pixels.len()]
                .copy_from_slice(pixels);
        }
    }
}

/// The scratch buffers of a pass over one chunk of images.
pub(crate) struct TileScratch<'a> {
    /// The transformed input tiles.
    pub v: &'a mut Vec<f32>,
    /// The products (forward) or the transformed output gradient (kernel gradient).
    pub m: &'a mut Vec<f32>,
    /// One zero-framed image.
    pub frame: &'a mut Vec<f32>,
}

/// [`Winograd::transform_inputs`] of one framed image, whose tiles start at `first_tile` of the
/// chunk's `tiles`.
struct InputTiles<'a> {
    w: &'a Winograd,
    frame: &'a [f32],
    first_tile: usize,
    tiles: usize,
    v: &'a mut [f32],
}

impl Kernel for InputTiles<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            w,
            frame,
            first_tile,
            tiles,
            v,
        } = self;
        let c = w.g.in_c;
        let (_, frame_w) = w.frame_dims();
        w.for_each_tile_block(
            1,
            c,
            #[inline(always)]
            |at, block, len| {
                let tile = first_tile + w.tile_index(at);
                let corner = (2 * at.ty * frame_w + 2 * at.tx) * c + block;
                separable_lanes(
                    #[inline(always)]
                    |i, j| &frame[corner + (i * frame_w + j) * c..],
                    len,
                    input_1d,
                    #[inline(always)]
                    |i, j, values| {
                        let position = i * 4 + j;
                        store(values, len, &mut v[(position * tiles + tile) * c + block..]);
                    },
                );
            },
        );
    }
}

/// `B dV Bᵀ` of the tiles of one image, from `first_tile` of the chunk's `tiles` in `dv` (16
/// row-major (tiles, Cin) matrices), each added into the zero-framed image gradient `frame` at
/// its 4×4 input tile (the tiles overlap by two pixels each way).
struct InputGradTiles<'a> {
    w: &'a Winograd,
    dv: &'a [f32],
    first_tile: usize,
    tiles: usize,
    frame: &'a mut [f32],
}

impl Kernel for InputGradTiles<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            w,
            dv,
            first_tile,
            tiles,
            frame,
        } = self;
        let c = w.g.in_c;
        let (_, frame_w) = w.frame_dims();
        w.for_each_tile_block(
            1,
            c,
            #[inline(always)]
            |at, block, len| {
                let tile = first_tile + w.tile_index(at);
                let corner = (2 * at.ty * frame_w + 2 * at.tx) * c + block;
                separable_lanes(
                    #[inline(always)]
                    |i, j| &dv[((i * 4 + j) * tiles + tile) * c + block..],
                    len,
                    input_grad_1d,
                    #[inline(always)]
                    |i, j, values| {
                        let at = corner + (i * frame_w + j) * c;
                        for (sum, &value) in frame[at..][..len].iter_mut().zip(values) {
                            *sum += value;
                        }
                    },
                );
            },
        );
    }
}

/// `Aᵀ M A` of every tile of a chunk, plus bias and ReLU, into the images' outputs `out`; the
/// cells of edge tiles past the output's edge are dropped.
struct OutputTiles<'a> {
    w: &'a Winograd,
    m: &'a [f32],
    tiles: usize,
    bias: Option<&'a [f32]>,
    relu: bool,
    out: &'a mut [MaybeUninit<f32>],
}

impl Kernel for OutputTiles<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            w,
            m,
            tiles,
            bias,
            relu,
            out,
        } = self;
        let g = &w.g;
        let c = g.out_c;
        let zeros = [0.0; LANES];
        let images = out.len() / g.out_image_len();
        w.for_each_tile_block(
            images,
            c,
            #[inline(always)]
            |at, block, len| {
                let tile = w.tile_index(at);
                let start = bias.map_or(&zeros[..], |bias| &bias[block..]);
                separable_lanes(
                    #[inline(always)]
                    |i, j| &m[((i * 4 + j) * tiles + tile) * c + block..],
                    len,
                    output_1d,
                    #[inline(always)]
                    |i, j, values| {
                        let (oy, ox) = (2 * at.ty + i, 2 * at.tx + j);
                        if oy >= g.out_h || ox >= g.out_w {
                            return;
                        }
                        let pixel = (at.image * g.out_h + oy) * g.out_w + ox;
                        let cells = out[pixel * c + block..][..len].iter_mut();
                        for (cell, (&v, &b)) in cells.zip(values.iter().zip(start)) {
                            let v = v + b;
                            cell.write(if relu { v.max(0.0) } else { v });
                        }
                    },
                );
            },
        );
    }
}

/// `dM = A dY Aᵀ` of every tile of a chunk's output gradient `dy`, zero past the output's edge,
/// as 16 row-major (tiles, Cout) matrices in `dm`.
struct OutputGradTiles<'a> {
    w: &'a Winograd,
    dy: &'a [f32],
    images: usize,
    dm: &'a mut [f32],
}

impl Kernel for OutputGradTiles<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self { w, dy, images, dm } = self;
        let g = &w.g;
        let c = g.out_c;
        let tiles = images * w.tiles_per_image();
        let zeros = [0.0; LANES];
        w.for_each_tile_block(
            images,
            c,
            #[inline(always)]
            |at, block, len| {
                let tile = w.tile_index(at);
                separable_lanes(
                    #[inline(always)]
                    |i, j| {
                        let (oy, ox) = (2 * at.ty + i, 2 * at.tx + j);
                        if oy < g.out_h && ox < g.out_w {
                            let pixel = (at.image * g.out_h + oy) * g.out_w + ox;
                            &dy[pixel * c + block..]
                        } else {
                            &zeros[..]
                        }
                    },
                    len,
                    output_grad_1d,
                    #[inline(always)]
                    |i, j, values| {
                        let position = i * 4 + j;
                        store(
                            values,
                            len,
                            &mut dm[(position * tiles + tile) * c + block..],
                        );
                    },
                );
            },
        );
    }
}
