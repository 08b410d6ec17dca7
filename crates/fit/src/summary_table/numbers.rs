//! Number formatting used by the summary footer: `f"{n:,}"` and Keras's `readable_memory_size`.

/// Formats a count with comma thousands separators, like Python's `f"{n:,}"`: `77665` -> `"77,665"`.
pub fn format_count(n: usize) -> String {
    let digits = n.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Formats a size in bytes the way Keras's `readable_memory_size` does: base 1024, two decimals,
/// units `B`, `KB`, `MB`, `GB`, `TB`, `PB` (`311_296` -> `"304.00 KB"`, `0` -> `"0.00 B"`).
///
/// Sizes of 1024 PB and more stay in PB (`"2048.00 PB"`); Keras divides once more there and
/// would print a value 1024 times too small.
pub fn readable_memory_size(bytes: usize) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    // Keras works on a Python float; f64 division gives the same values.
    let mut size = bytes as f64;
    let mut unit = 0;
    while size / 1024.0 >= 1.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.2} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(7), "7");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1000), "1,000");
        assert_eq!(format_count(25_120), "25,120");
        assert_eq!(format_count(999_999), "999,999");
        assert_eq!(format_count(1_000_000), "1,000,000");
        assert_eq!(format_count(1_234_567_890), "1,234,567,890");
    }

    #[test]
    fn sizes_use_base_1024_and_two_decimals() {
        assert_eq!(readable_memory_size(0), "0.00 B");
        assert_eq!(readable_memory_size(999), "999.00 B");
        assert_eq!(readable_memory_size(1000), "1000.00 B");
        assert_eq!(readable_memory_size(1023), "1023.00 B");
        assert_eq!(readable_memory_size(1024), "1.00 KB");
        // 77,665 float32 weights: 310660 / 1024 = 303.37890625.
        assert_eq!(readable_memory_size(310_660), "303.38 KB");
        // 39,200 float32 weights: 153.125 KB, a tie that Python rounds to even.
        assert_eq!(readable_memory_size(156_800), "153.12 KB");
        assert_eq!(readable_memory_size(1024 * 1024 - 1), "1024.00 KB");
        assert_eq!(readable_memory_size(1024 * 1024), "1.00 MB");
        assert_eq!(
            readable_memory_size(5 * 1024 * 1024 + 512 * 1024),
            "5.50 MB"
        );
        assert_eq!(readable_memory_size(3 << 30), "3.00 GB");
        assert_eq!(readable_memory_size(1 << 40), "1.00 TB");
        assert_eq!(readable_memory_size(1 << 50), "1.00 PB");
        assert_eq!(readable_memory_size(1 << 61), "2048.00 PB");
    }
}
