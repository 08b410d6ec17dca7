//! Golden tests: the summaries Keras 3 printed for the tutorial autoencoders
//! (`tests/golden/summaries/*.txt`), plus layouts Keras produces in other situations.

use super::*;

/// A layer row of a sequential-like table.
fn row(layer: &str, output_shape: &str, params: usize) -> SummaryRow {
    SummaryRow {
        layer: layer.to_owned(),
        output_shape: output_shape.to_owned(),
        params: Some(params),
        connected_to: Vec::new(),
    }
}

/// Totals of a float32 model whose weights are all trainable.
fn float32_trainable(count: usize) -> ParamTotals {
    ParamTotals {
        trainable: (count, 4 * count),
        non_trainable: (0, 0),
        optimizer: None,
    }
}

/// The section `### name` of a golden file, without its header and trailing blank line.
fn golden_section(file: &str, name: &str) -> String {
    let path = format!(
        "{}/tests/golden/summaries/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let header = format!("### {name}\n");
    let start = text.find(&header).expect("section present") + header.len();
    let section = match text[start..].find("\n### ") {
        Some(end) => &text[start..start + end + 1],
        None => &text[start..],
    };
    section.trim_end_matches('\n').to_owned() + "\n"
}

/// Renders a float32, all-trainable model as a non-terminal Keras would.
fn render_plain(name: &str, rows: &[SummaryRow]) -> String {
    let total = rows.iter().map(|r| r.params.unwrap_or(0)).sum();
    render_summary(name, rows, &float32_trainable(total), false, None).unwrap()
}

fn assert_golden(file: &str, name: &str, rows: &[SummaryRow]) {
    assert_eq!(
        render_plain(name, rows),
        golden_section(file, name),
        "{file} / {name}"
    );
}

#[test]
fn dense_autoencoder() {
    assert_golden(
        "dense.txt",
        "autoencoder",
        &[
            row("input_layer_2 (InputLayer)", "(None, 28, 28, 1)", 0),
            row("encoder (Functional)", "(None, 49)", 38_465),
            row("decoder (Functional)", "(None, 28, 28, 1)", 39_200),
        ],
    );
    assert_golden(
        "dense.txt",
        "encoder",
        &[
            row("input_layer (InputLayer)", "(None, 28, 28, 1)", 0),
            row("flatten (Flatten)", "(None, 784)", 0),
            row("dense (Dense)", "(None, 49)", 38_465),
        ],
    );
    assert_golden(
        "dense.txt",
        "decoder",
        &[
            row("input_layer_1 (InputLayer)", "(None, 49)", 0),
            row("dense_1 (Dense)", "(None, 784)", 39_200),
            row("reshape (Reshape)", "(None, 28, 28, 1)", 0),
        ],
    );
}

#[test]
fn sparse_autoencoder() {
    assert_golden(
        "sparse.txt",
        "autoencoder",
        &[
            row("input_layer_2 (InputLayer)", "(None, 28, 28, 1)", 0),
            row("encoder (Functional)", "(None, 16)", 39_776),
            row("decoder (Functional)", "(None, 28, 28, 1)", 40_544),
        ],
    );
    assert_golden(
        "sparse.txt",
        "encoder",
        &[
            row("input_layer (InputLayer)", "(None, 28, 28, 1)", 0),
            row("flatten (Flatten)", "(None, 784)", 0),
            row("dense (Dense)", "(None, 48)", 37_680),
            row("dense_1 (Dense)", "(None, 32)", 1_568),
            row("dense_2 (Dense)", "(None, 16)", 528),
        ],
    );
    assert_golden(
        "sparse.txt",
        "decoder",
        &[
            row("input_layer_1 (InputLayer)", "(None, 16)", 0),
            row("dense_3 (Dense)", "(None, 32)", 544),
            row("dense_4 (Dense)", "(None, 48)", 1_584),
            row("dense_5 (Dense)", "(None, 784)", 38_416),
            row("reshape (Reshape)", "(None, 28, 28, 1)", 0),
        ],
    );
}

#[test]
fn deep_autoencoder() {
    assert_golden(
        "deep.txt",
        "autoencoder",
        &[
            row("input_layer_2 (InputLayer)", "(None, 28, 28, 1)", 0),
            row("encoder (Functional)", "(None, 49)", 134_750),
            row("decoder (Functional)", "(None, 28, 28, 1)", 135_485),
        ],
    );
    assert_golden(
        "deep.txt",
        "encoder",
        &[
            row("input_layer (InputLayer)", "(None, 28, 28, 1)", 0),
            row("flatten (Flatten)", "(None, 784)", 0),
            row("dense (Dense)", "(None, 147)", 115_395),
            row("dense_1 (Dense)", "(None, 98)", 14_504),
            row("dense_2 (Dense)", "(None, 49)", 4_851),
        ],
    );
    assert_golden(
        "deep.txt",
        "decoder",
        &[
            row("input_layer_1 (InputLayer)", "(None, 49)", 0),
            row("dense_3 (Dense)", "(None, 98)", 4_900),
            row("dense_4 (Dense)", "(None, 147)", 14_553),
            row("dense_5 (Dense)", "(None, 784)", 116_032),
            row("reshape (Reshape)", "(None, 28, 28, 1)", 0),
        ],
    );
}

#[test]
fn conv_autoencoder() {
    assert_golden(
        "conv.txt",
        "autoencoder",
        &[
            row("input_layer_2 (InputLayer)", "(None, 28, 28, 1)", 0),
            row("encoder (Functional)", "(None, 7, 7, 1)", 24_385),
            row("decoder (Functional)", "(None, 28, 28, 1)", 24_385),
        ],
    );
    assert_golden(
        "conv.txt",
        "encoder",
        &[
            row("input_layer (InputLayer)", "(None, 28, 28, 1)", 0),
            row("conv2d (Conv2D)", "(None, 28, 28, 128)", 6_400),
            row("max_pooling2d (MaxPooling2D)", "(None, 14, 14, 128)", 0),
            row("conv2d_1 (Conv2D)", "(None, 14, 14, 32)", 16_416),
            row("max_pooling2d_1 (MaxPooling2D)", "(None, 7, 7, 32)", 0),
            row("conv2d_2 (Conv2D)", "(None, 7, 7, 1)", 1_569),
        ],
    );
    assert_golden(
        "conv.txt",
        "decoder",
        &[
            row("input_layer_1 (InputLayer)", "(None, 7, 7, 1)", 0),
            row("conv2d_3 (Conv2D)", "(None, 7, 7, 32)", 1_600),
            row("up_sampling2d (UpSampling2D)", "(None, 14, 14, 32)", 0),
            row("conv2d_4 (Conv2D)", "(None, 14, 14, 128)", 16_512),
            row("up_sampling2d_1 (UpSampling2D)", "(None, 28, 28, 128)", 0),
            row("conv2d_5 (Conv2D)", "(None, 28, 28, 1)", 6_273),
        ],
    );
}

/// The table a functional model with a shared input gets: 4 columns, 21/19/12/19 at 76.
#[test]
fn connected_to_column() {
    let rows = [
        SummaryRow {
            layer: "input_layer (InputLayer)".into(),
            output_shape: "(None, 8)".into(),
            params: Some(0),
            connected_to: vec![],
        },
        SummaryRow {
            layer: "dense (Dense)".into(),
            output_shape: "(None, 4)".into(),
            params: Some(36),
            connected_to: vec!["input_layer[0][0]".into()],
        },
        SummaryRow {
            layer: "dense_1 (Dense)".into(),
            output_shape: "(None, 4)".into(),
            params: Some(36),
            connected_to: vec!["input_layer[0][0]".into()],
        },
        SummaryRow {
            layer: "add (Add)".into(),
            output_shape: "(None, 4)".into(),
            params: Some(0),
            connected_to: vec!["dense[0][0]".into(), "dense_1[0][0]".into()],
        },
    ];
    let text = render_summary("functional", &rows, &float32_trainable(72), true, None).unwrap();
    let expected = "\
Model: \"functional\"
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ input_layer         │ (None, 8)         │          0 │ -                 │
│ (InputLayer)        │                   │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ dense (Dense)       │ (None, 4)         │         36 │ input_layer[0][0] │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ dense_1 (Dense)     │ (None, 4)         │         36 │ input_layer[0][0] │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ add (Add)           │ (None, 4)         │          0 │ dense[0][0],      │
│                     │                   │            │ dense_1[0][0]     │
└─────────────────────┴───────────────────┴────────────┴───────────────────┘
 Total params: 72 (288.00 B)
 Trainable params: 72 (288.00 B)
 Non-trainable params: 0 (0.00 B)
";
    assert_eq!(text, expected);
}

/// A name wider than its column wraps at the space; a word wider than the column is cut with `…`
/// (rich's default `overflow="ellipsis"` for table columns).
#[test]
fn long_layer_names_wrap_then_get_an_ellipsis() {
    let rows = [
        row("a_rather_long_dense_layer_name (Dense)", "(None, 10)", 110),
        row(
            "an_extremely_long_layer_name_beyond_any_column (Dense)",
            "(None, 1)",
            11,
        ),
    ];
    let expected = "\
Model: \"sequential\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ a_rather_long_dense_layer_name  │ (None, 10)             │           110 │
│ (Dense)                         │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ an_extremely_long_layer_name_b… │ (None, 1)              │            11 │
│ (Dense)                         │                        │               │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 121 (484.00 B)
 Trainable params: 121 (484.00 B)
 Non-trainable params: 0 (0.00 B)
";
    assert_eq!(render_plain("sequential", &rows), expected);
}

/// Adam on a 9-weight model: 2 x 9 moments + iteration + learning rate = 20 variables.
#[test]
fn optimizer_params_line_is_included_in_the_total() {
    let totals = ParamTotals {
        trainable: (9, 36),
        non_trainable: (0, 0),
        optimizer: Some((20, 80)),
    };
    let text = render_summary(
        "sequential",
        &[row("dense (Dense)", "(None, 1)", 9)],
        &totals,
        false,
        None,
    )
    .unwrap();
    let footer: Vec<&str> = text.lines().rev().take(4).collect();
    assert_eq!(
        footer,
        [
            " Optimizer params: 20 (80.00 B)",
            " Non-trainable params: 0 (0.00 B)",
            " Trainable params: 9 (36.00 B)",
            " Total params: 29 (116.00 B)",
        ]
    );
}

/// On a terminal of 92 columns or more the 3-column table is 88 wide (38/29/17).
#[test]
fn wide_terminal_layout() {
    let totals = ParamTotals {
        trainable: (25_120, 100_480),
        non_trainable: (10, 40),
        optimizer: None,
    };
    let rows = [
        row("dense (Dense)", "(None, 32)", 25_120),
        SummaryRow {
            layer: "dense_1 (Dense)".into(),
            output_shape: "?".into(),
            params: None,
            connected_to: vec![],
        },
    ];
    let expected = "\
Model: \"sequential\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┓
┃ Layer (type)                         ┃ Output Shape                ┃         Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━┩
│ dense (Dense)                        │ (None, 32)                  │          25,120 │
├──────────────────────────────────────┼─────────────────────────────┼─────────────────┤
│ dense_1 (Dense)                      │ ?                           │     0 (unbuilt) │
└──────────────────────────────────────┴─────────────────────────────┴─────────────────┘
 Total params: 25,130 (98.16 KB)
 Trainable params: 25,120 (98.12 KB)
 Non-trainable params: 10 (40.00 B)
";
    for columns in [92, 120] {
        let text = render_summary("sequential", &rows, &totals, false, Some(columns)).unwrap();
        assert_eq!(text, expected, "{columns} columns");
    }
}

/// Lines wider than a narrow terminal wrap as rich's console wraps them, and a header that does
/// not fit wraps inside its cell, aligned to the bottom.
#[test]
fn narrow_terminal_wraps_header_and_footer() {
    let rows = [row("d (Dense)", "(None, 2)", 6)];
    let text = render_summary("tiny", &rows, &float32_trainable(6), false, Some(30)).unwrap();
    // Widths 10/7/5: "Output " and "Param " are cut with an ellipsis, the rest wraps at spaces.
    let expected = "\
Model: \"tiny\"
┏━━━━━━━━━━┳━━━━━━━┳━━━━━┓
┃ Layer    ┃ Outp… ┃ Pa… ┃
┃ (type)   ┃ Shape ┃   # ┃
┡━━━━━━━━━━╇━━━━━━━╇━━━━━┩
│ d        │ (Non… │   6 │
│ (Dense)  │ 2)    │     │
└──────────┴───────┴─────┘
 Total params: 6 (24.00 B)
 Trainable params: 6 (24.00 B)
 Non-trainable params: 0 (0.00
B)
";
    assert_eq!(text, expected);
}

#[test]
fn too_narrow_terminal_is_an_error() {
    let error = render_summary("m", &[], &ParamTotals::default(), false, Some(12)).unwrap_err();
    assert!(
        error.to_string().contains("insufficient console width"),
        "{error}"
    );
}

#[test]
fn empty_model_still_has_header_and_borders() {
    let text = render_summary("empty", &[], &ParamTotals::default(), false, None).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8);
    assert!(lines[3].starts_with('┡'));
    assert!(lines[4].starts_with('└'));
    assert_eq!(lines[5], " Total params: 0 (0.00 B)");
}
