//! rich's `ratio_reduce` (`rich/_ratio.py`), which shrinks table columns that are too wide.

/// Subtracts `total` from `values` in proportion to `ratios`, never taking more than `maximums[i]`
/// from slot `i`; slots whose maximum is 0 are left alone. Rounding is Python's `round`
/// (half to even) of the float share, as in rich.
pub(crate) fn ratio_reduce(
    total: usize,
    ratios: &[usize],
    maximums: &[usize],
    values: &[usize],
) -> Vec<usize> {
    let ratios: Vec<usize> = ratios
        .iter()
        .zip(maximums)
        .map(|(&ratio, &maximum)| if maximum > 0 { ratio } else { 0 })
        .collect();
    let mut total_ratio: usize = ratios.iter().sum();
    if total_ratio == 0 {
        return values.to_vec();
    }
    let mut total_remaining = total;
    let mut result = Vec::with_capacity(values.len());
    for ((&ratio, &maximum), &value) in ratios.iter().zip(maximums).zip(values) {
        if ratio > 0 && total_ratio > 0 {
            let share =
                (ratio as f64 * total_remaining as f64 / total_ratio as f64).round_ties_even();
            let distributed = maximum.min(share as usize);
            result.push(value.saturating_sub(distributed));
            total_remaining = total_remaining.saturating_sub(distributed);
            total_ratio -= ratio;
        } else {
            result.push(value);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_half_to_even() {
        // 10 over 3 slots: round(3.33) = 3, round(7 / 2 = 3.5) = 4, then the last 3.
        assert_eq!(
            ratio_reduce(10, &[1, 1, 1], &[36, 28, 18], &[36, 28, 18]),
            [33, 24, 15]
        );
        // 13 over 4 slots: 3, 3, round(3.5) = 4, 3.
        assert_eq!(
            ratio_reduce(13, &[1, 1, 1, 1], &[24, 22, 16, 22], &[24, 22, 16, 22]),
            [21, 19, 12, 19]
        );
        // 5 over 2 slots: round(2.5) = 2, then 3.
        assert_eq!(ratio_reduce(5, &[1, 1], &[9, 9], &[9, 9]), [7, 6]);
    }

    #[test]
    fn maximums_cap_and_exclude_slots() {
        assert_eq!(ratio_reduce(10, &[1, 1], &[2, 20], &[30, 30]), [28, 22]);
        assert_eq!(ratio_reduce(4, &[1, 1], &[0, 10], &[30, 30]), [30, 26]);
        assert_eq!(ratio_reduce(4, &[0, 0], &[5, 5], &[30, 30]), [30, 30]);
    }
}
