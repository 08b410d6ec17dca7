//! Accurate sums for the normalization kernels: column sums over many rows (f32 within short
//! blocks of rows, f64 across blocks) and row sums that vectorise (several f32 lanes).

/// Rows whose terms a column sum adds in f32 before adding the block's sum to its f64 total:
/// short enough that the f32 rounding stays near one part in a million over any batch (a
/// batch of 256 images of 28x28 is 200 704 rows), long enough that the f64 additions cost
/// nothing next to the terms.
const BLOCK_ROWS: usize = 64;

/// Lanes a row sum keeps apart, so that LLVM turns the loop into vector additions (a single
/// f32 accumulator must add in order, one element at a time).
const LANES: usize = 16;

/// Two per-column sums in f64 (what they sum depends on the kernel).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ColumnSums(pub Vec<f64>, pub Vec<f64>);

impl ColumnSums {
    /// Both sums of `chunks` (each a part of the rows) added up; zeros for no chunk.
    pub(super) fn total(chunks: Vec<ColumnSums>, cols: usize) -> ColumnSums {
        let mut total = ColumnSums(vec![0.0; cols], vec![0.0; cols]);
        for chunk in chunks {
            for (t, c) in total.0.iter_mut().zip(&chunk.0) {
                *t += c;
            }
            for (t, c) in total.1.iter_mut().zip(&chunk.1) {
                *t += c;
            }
        }
        total
    }
}

/// The column sums of the two terms `row_terms(row, first, second)` adds for each of `rows`
/// rows (it adds row `row`'s terms into the `cols`-long `first` and `second`).
///
/// Inlined into the calling kernel, so that `row_terms` is compiled with its target features.
#[inline(always)]
pub(super) fn column_sums(
    rows: usize,
    cols: usize,
    mut row_terms: impl FnMut(usize, &mut [f32], &mut [f32]),
) -> ColumnSums {
    let mut sums = ColumnSums(vec![0.0; cols], vec![0.0; cols]);
    let (mut first, mut second) = (vec![0.0f32; cols], vec![0.0f32; cols]);
    for block in (0..rows).step_by(BLOCK_ROWS) {
        first.fill(0.0);
        second.fill(0.0);
        for row in block..rows.min(block + BLOCK_ROWS) {
            row_terms(row, &mut first, &mut second);
        }
        for (total, &part) in sums.0.iter_mut().zip(&first) {
            *total += part as f64;
        }
        for (total, &part) in sums.1.iter_mut().zip(&second) {
            *total += part as f64;
        }
    }
    sums
}

/// `Σ term(a[i], b[i])` over slices of one length, in [`LANES`] lanes.
#[inline(always)]
pub(super) fn lane_sum(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (whole_a, whole_b) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = whole_a
        .remainder()
        .iter()
        .zip(whole_b.remainder())
        .map(|(&u, &v)| term(u, v))
        .sum();
    for (block_a, block_b) in whole_a.zip(whole_b) {
        for ((lane, &u), &v) in lanes.iter_mut().zip(block_a).zip(block_b) {
            *lane += term(u, v);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_sums_add_every_row_once_across_blocks() {
        for rows in [0, 1, BLOCK_ROWS, 3 * BLOCK_ROWS + 5] {
            let sums = column_sums(rows, 2, |row, first, second| {
                first[0] += row as f32;
                first[1] += 1.0;
                second[1] += 2.0;
            });
            let n = rows as f64;
            let want_rows = if rows == 0 { 0.0 } else { n * (n - 1.0) / 2.0 };
            assert_eq!(sums, ColumnSums(vec![want_rows, n], vec![0.0, 2.0 * n]));
        }
        let total = ColumnSums::total(
            vec![
                ColumnSums(vec![1.0], vec![2.0]),
                ColumnSums(vec![3.0], vec![4.0]),
            ],
            1,
        );
        assert_eq!(total, ColumnSums(vec![4.0], vec![6.0]));
    }

    #[test]
    fn lane_sums_cover_the_whole_slice_and_its_tail() {
        for len in [0, 1, LANES - 1, LANES, 5 * LANES + 3] {
            let a: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..len).map(|i| (i % 3) as f32).collect();
            let want: f32 = a.iter().zip(&b).map(|(u, v)| u * v).sum();
            assert_eq!(lane_sum(&a, &b, |u, v| u * v), want, "{len}");
        }
    }

    #[test]
    fn blocks_keep_a_long_column_sum_accurate() {
        // 200 704 rows of 0.1 (not exact in binary): one f32 accumulator drifts by ~1e-3
        // relative; blocks of 64 stay within ~1e-6.
        let rows = 256 * 28 * 28;
        let sums = column_sums(rows, 1, |_, first, _| first[0] += 0.1);
        let want = rows as f64 * 0.1f32 as f64;
        assert!((sums.0[0] - want).abs() / want < 2e-6, "{}", sums.0[0]);
    }
}
