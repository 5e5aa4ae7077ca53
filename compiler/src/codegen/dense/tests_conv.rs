//! Tests of `lower_conv` against the interpreter: every path, geometry and epilogue.

use super::conv::{build_plan, Path, Split};
use super::lower_conv;
use super::test_util::{check, Env};
use crate::codegen::Epilogue;
use sparsec_ir::Op;

/// One convolution case.
struct C {
    x: &'static [usize],
    w: &'static [usize],
    group: i64,
    strides: &'static [i64],
    pads: &'static [i64],
    dil: &'static [i64],
    auto_pad: &'static str,
    path: Path,
}

const fn c(x: &'static [usize], w: &'static [usize], group: i64, path: Path) -> C {
    C {
        x,
        w,
        group,
        strides: &[],
        pads: &[],
        dil: &[],
        auto_pad: "NOTSET",
        path,
    }
}

fn cases() -> Vec<C> {
    use Path::*;
    vec![
        C {
            pads: &[1, 1, 1, 1],
            ..c(&[1, 3, 7, 9], &[4, 3, 3, 3], 1, Im2col)
        },
        C {
            strides: &[2, 2],
            pads: &[0, 1, 2, 0],
            ..c(&[2, 3, 9, 8], &[5, 3, 3, 3], 1, Im2col)
        },
        C {
            dil: &[2, 2],
            pads: &[2, 1, 0, 3],
            ..c(&[1, 2, 10, 7], &[3, 2, 3, 2], 1, Im2col)
        },
        C {
            strides: &[2, 1],
            dil: &[1, 2],
            ..c(&[2, 4, 6, 5], &[6, 2, 3, 2], 2, Im2col)
        },
        C {
            strides: &[2, 2],
            auto_pad: "SAME_UPPER",
            ..c(&[1, 3, 7, 6], &[4, 3, 3, 3], 1, Im2col)
        },
        C {
            auto_pad: "SAME_LOWER",
            ..c(&[1, 2, 5, 5], &[3, 2, 2, 2], 1, Im2col)
        },
        // Enough input channels that the im2col block covers fewer pixels than the image.
        C {
            pads: &[1, 1, 1, 1],
            ..c(&[1, 300, 10, 10], &[2, 300, 3, 3], 1, Im2col)
        },
        // More channels than pixels: the channels are split, across group boundaries.
        C {
            pads: &[1, 1, 1, 1],
            ..c(&[1, 3, 3, 3], &[16, 3, 3, 3], 1, Im2col)
        },
        C {
            pads: &[1, 1, 1, 1],
            ..c(&[2, 4, 2, 2], &[12, 2, 3, 3], 2, Im2col)
        },
        // Pixel panels with a ragged last one, im2col blocks evened out inside each chunk.
        C {
            pads: &[1, 1, 1, 1],
            ..c(&[1, 600, 13, 11], &[3, 600, 3, 3], 1, Im2col)
        },
        // Fewer pixels than channels but enough panels: im2col still splits pixels.
        C {
            pads: &[1, 1, 1, 1],
            ..c(&[2, 3, 12, 12], &[160, 3, 3, 3], 1, Im2col)
        },
        // Channel units with a ragged last unit, across group boundaries.
        C {
            pads: &[1, 1, 1, 1],
            ..c(&[1, 3, 3, 3], &[21, 3, 3, 3], 1, Im2col)
        },
        C {
            pads: &[0, 1, 1, 0],
            ..c(&[2, 6, 3, 2], &[27, 2, 3, 3], 3, Im2col)
        },
        // Strided 1x1 and padded 1x1 go through im2col.
        C {
            strides: &[2, 2],
            ..c(&[1, 5, 7, 7], &[3, 5, 1, 1], 1, Im2col)
        },
        c(&[2, 5, 4, 3], &[7, 5, 1, 1], 1, Pointwise),
        // Images of few pixels batched into one GEMM, in groups of two (the im2col block of
        // one image is 1350 x 36 floats) with a last group of one.
        C {
            pads: &[1, 1, 1, 1],
            ..c(&[5, 150, 6, 6], &[7, 150, 3, 3], 1, Im2col)
        },
        c(&[6, 9, 3, 4], &[11, 9, 1, 1], 1, Pointwise),
        c(&[1, 4, 5, 5], &[6, 2, 1, 1], 2, Pointwise),
        c(&[1, 6, 2, 1], &[40, 6, 1, 1], 1, Pointwise),
        c(&[2, 6, 2, 3], &[43, 6, 1, 1], 1, Pointwise),
        c(&[1, 3, 7, 5], &[4, 3, 1, 1], 1, Pointwise),
        C {
            strides: &[2, 2],
            pads: &[1, 0, 1, 2],
            ..c(&[1, 4, 7, 7], &[8, 1, 3, 3], 4, Depthwise)
        },
        C {
            dil: &[2, 2],
            pads: &[2, 2, 2, 2],
            ..c(&[2, 3, 6, 5], &[3, 1, 3, 3], 3, Depthwise)
        },
        C {
            strides: &[2],
            pads: &[1, 0],
            ..c(&[1, 3, 10], &[2, 3, 3], 1, Im2col)
        },
        c(&[1, 3, 10], &[3, 1, 4], 3, Depthwise),
        // Stride 1 on rows of at most 32 values: the padded-plane loop, with a channel
        // multiplier, symmetric, asymmetric and wide padding; then a wider row (the row walk).
        C {
            pads: &[1, 1, 1, 1],
            ..c(&[1, 4, 7, 7], &[8, 1, 3, 3], 4, Depthwise)
        },
        C {
            pads: &[0, 2, 1, 0],
            ..c(&[2, 3, 6, 9], &[3, 1, 3, 3], 3, Depthwise)
        },
        C {
            pads: &[2, 2, 2, 2],
            ..c(&[1, 3, 9, 8], &[3, 1, 5, 5], 3, Depthwise)
        },
        C {
            pads: &[1, 1, 1, 1],
            ..c(&[1, 2, 3, 40], &[2, 1, 3, 3], 2, Depthwise)
        },
        C {
            pads: &[1, 0, 0, 0, 1, 1],
            ..c(&[1, 2, 4, 5, 6], &[3, 2, 2, 3, 2], 1, Im2col)
        },
        C {
            strides: &[1, 2, 1],
            ..c(&[1, 2, 3, 5, 4], &[2, 1, 2, 2, 2], 2, Depthwise)
        },
    ]
}

fn conv_op(k: &C) -> Op {
    Op::Conv {
        auto_pad: k.auto_pad.to_string(),
        dilations: k.dil.to_vec(),
        group: k.group,
        kernel_shape: vec![],
        pads: k.pads.to_vec(),
        strides: k.strides.to_vec(),
    }
}

/// A 2-D Conv with the same padding on every side and the same stride on both axes.
fn square_conv(pad: usize, stride: usize, group: usize) -> Op {
    Op::Conv {
        auto_pad: "NOTSET".into(),
        dilations: vec![],
        group: group as i64,
        kernel_shape: vec![],
        pads: vec![pad as i64; 4],
        strides: vec![stride as i64; 2],
    }
}

#[test]
fn every_path_and_geometry_with_and_without_bias() {
    for (i, k) in cases().iter().enumerate() {
        for with_bias in [false, true] {
            let mut env = Env::new();
            let x = env.input(k.x);
            let w = env.weight(k.w);
            let b = with_bias.then(|| env.weight(&[k.w[0]]));
            let node = env.node(conv_op(k), vec![Some(x), Some(w), b]);
            let (plan, _, _) = build_plan(&env.g, node, &[]).expect("plans");
            assert_eq!(plan.path_kind(), k.path, "case {i}");
            check(&env, node, &[], 1, lower_conv);
        }
    }
}

#[test]
fn each_epilogue_on_each_path() {
    for k in cases().iter().filter(|k| k.x.len() == 4).take(16) {
        let mut env = Env::new();
        let x = env.input(k.x);
        let w = env.weight(k.w);
        let b = env.weight(&[k.w[0]]);
        let node = env.node(conv_op(k), vec![Some(x), Some(w), Some(b)]);
        let y = env.data[&env.g.node(node).outputs[0]].shape().to_vec();
        let bias = env.input(&[k.w[0]]);
        let res = env.input(&y);
        for e in [
            vec![Epilogue::Bias(bias)],
            vec![Epilogue::AddTensor(res)],
            vec![Epilogue::Relu],
            vec![Epilogue::Clip(0.0, 0.5)],
            vec![Epilogue::LeakyRelu(0.3)],
            vec![
                Epilogue::Bias(bias),
                Epilogue::AddTensor(res),
                Epilogue::Relu,
            ],
        ] {
            check(&env, node, &e, 1, lower_conv);
        }
    }
}

#[test]
fn rejects_bad_epilogue_operands() {
    let k = &cases()[0];
    let mut env = Env::new();
    let x = env.input(k.x);
    let w = env.weight(k.w);
    let node = env.node(conv_op(k), vec![Some(x), Some(w), None]);
    let wrong = env.input(&[3]);
    assert!(lower_conv(&env.g, node, &[Epilogue::Bias(wrong)]).is_err());
    assert!(lower_conv(&env.g, node, &[Epilogue::AddTensor(wrong)]).is_err());
}

#[test]
fn forced_im2col_matches_on_every_case() {
    for k in cases() {
        let mut env = Env::new();
        let x = env.input(k.x);
        let w = env.weight(k.w);
        let node = env.node(conv_op(&k), vec![Some(x), Some(w), None]);
        let forced = |g: &sparsec_ir::Graph, n, e: &[Epilogue]| {
            super::lower_conv_path(g, n, e, Some(Path::Im2col))
        };
        check(&env, node, &[Epilogue::Relu], 1, forced);
        if k.path != Path::Pointwise {
            let err = super::lower_conv_path(&env.g, node, &[], Some(Path::Pointwise));
            assert!(err.is_err());
        }
    }
}

#[test]
fn splits_resnet50_shapes_as_intended() {
    // `(input channels, output channels, input size, kernel, stride, pad)`, the split and unit.
    let shapes = [
        (3, 64, 224, 7, 2, 3, Split::Pixels, 16),
        (64, 64, 56, 3, 1, 1, Split::Pixels, 16),
        (256, 256, 14, 3, 1, 1, Split::Pixels, 16),
        (512, 512, 7, 3, 1, 1, Split::Channels, 8),
        // Pointwise: at least `POINTWISE_CHANNEL_SPLIT` output channels split channels.
        (64, 64, 56, 1, 1, 0, Split::Pixels, 16),
        (256, 128, 56, 1, 1, 0, Split::Pixels, 16),
        (64, 256, 56, 1, 1, 0, Split::Channels, 8),
        (128, 512, 28, 1, 1, 0, Split::Channels, 8),
        // Strided 1x1 (im2col of one position): pixels only while they outnumber the channels.
        (256, 512, 56, 1, 2, 0, Split::Pixels, 16),
        (512, 1024, 28, 1, 2, 0, Split::Channels, 8),
        (1024, 256, 14, 1, 1, 0, Split::Channels, 8),
        (1024, 128, 14, 1, 1, 0, Split::Pixels, 16),
        (256, 1024, 14, 1, 1, 0, Split::Channels, 8),
        (512, 2048, 7, 1, 1, 0, Split::Channels, 8),
    ];
    for (ci, co, hw, k, st, pad, split, unit) in shapes {
        let mut env = Env::new();
        let x = env.input_shape(&[1, ci, hw, hw]);
        let w = env.weight_shape(&[co, ci, k, k]);
        let op = square_conv(pad, st, 1);
        let o = (hw + 2 * pad - k) / st + 1;
        let node = env.node_shape(op, vec![Some(x), Some(w), None], &[1, co, o, o]);
        let (plan, _, _) = build_plan(&env.g, node, &[]).expect("plans");
        assert_eq!(plan.split_kind(), (split, unit), "{ci}>{co} {hw} {k}x{k}");
    }
}

#[test]
fn batches_images_of_few_pixels() {
    // `(batch, input channels, output channels, size, kernel, pad, group)` and whether images are
    // batched: the digits CNN at batch 256 (8 x 8 and 4 x 4 images) is, one image or a grouped
    // or depthwise conv or 128 output pixels and more or an offset table over the cap are not.
    let shapes = [
        (256, 32, 64, 8, 3, 1, 1, true),
        (256, 64, 128, 4, 3, 1, 1, true),
        (256, 64, 128, 4, 1, 0, 1, true),
        (1, 32, 64, 8, 3, 1, 1, false),
        (256, 32, 64, 8, 3, 1, 2, false),
        (256, 32, 32, 8, 3, 1, 32, false),
        (4, 16, 16, 12, 3, 1, 1, false),
        // An offset table of 9216 x 121 entries is over the cap.
        (2, 1024, 8, 11, 3, 1, 1, false),
        (2, 1024, 8, 10, 3, 1, 1, true),
    ];
    for (n, ci, co, hw, k, pad, group, batched) in shapes {
        let mut env = Env::new();
        let x = env.input_shape(&[n, ci, hw, hw]);
        let w = env.weight_shape(&[co, ci / group, k, k]);
        let op = square_conv(pad, 1, group);
        let o = hw + 2 * pad - k + 1;
        let node = env.node_shape(op, vec![Some(x), Some(w), None], &[n, co, o, o]);
        let (plan, _, _) = build_plan(&env.g, node, &[]).expect("plans");
        let images = plan.split_kind().0 == Split::Images;
        assert_eq!(
            images, batched,
            "{n} x {ci}>{co} {hw} {k}x{k} group {group}"
        );
    }
}

#[test]
fn single_small_images_gather_their_im2col() {
    // `(input channels, output channels, size, kernel, stride, pad)` and whether the im2col of a
    // single image goes through the offset table: under 128 output pixels on the im2col path.
    let shapes = [
        (64, 128, 4, 3, 1, 1, true),
        (32, 64, 8, 3, 1, 1, true),
        (5, 7, 9, 3, 2, 0, true),
        (16, 16, 12, 3, 1, 1, false),
        (8, 8, 8, 1, 1, 0, false),
    ];
    for (ci, co, hw, k, st, pad, gathers) in shapes {
        let mut env = Env::new();
        let x = env.input(&[1, ci, hw, hw]);
        let w = env.weight(&[co, ci, k, k]);
        let b = env.weight(&[co]);
        let node = env.node(square_conv(pad, st, 1), vec![Some(x), Some(w), Some(b)]);
        let (plan, _, _) = build_plan(&env.g, node, &[]).expect("plans");
        let case = format!("{ci}>{co} {hw}x{hw} {k}x{k} stride {st}");
        assert_eq!(plan.gathers(), gathers, "{case}");
        assert_ne!(plan.split_kind().0, Split::Images, "{case}");
        let y = env.data[&env.g.node(node).outputs[0]].shape().to_vec();
        let res = env.input(&y);
        check(
            &env,
            node,
            &[Epilogue::AddTensor(res), Epilogue::Relu],
            1,
            lower_conv,
        );
    }
}

/// Convolutions that take the Winograd path: odd and even output sizes, symmetric, asymmetric,
/// `SAME` and no padding, batches, several tile-row blocks, both splits (tile rows; output
/// channels with a ragged last unit), and several blocks of the transformed weights.
fn winograd_cases() -> Vec<C> {
    use Path::*;
    vec![
        C {
            pads: &[1, 1, 1, 1],
            ..c(&[1, 16, 7, 9], &[16, 16, 3, 3], 1, Winograd)
        },
        C {
            pads: &[0, 1, 2, 0],
            ..c(&[2, 20, 12, 12], &[24, 20, 3, 3], 1, Winograd)
        },
        C {
            pads: &[1, 1, 1, 1],
            ..c(&[1, 32, 4, 4], &[40, 32, 3, 3], 1, Winograd)
        },
        c(&[1, 16, 10, 10], &[17, 16, 3, 3], 1, Winograd),
        C {
            pads: &[2, 2, 2, 2],
            ..c(&[1, 17, 30, 30], &[16, 17, 3, 3], 1, Winograd)
        },
        C {
            auto_pad: "SAME_UPPER",
            ..c(&[1, 16, 5, 6], &[16, 16, 3, 3], 1, Winograd)
        },
        C {
            pads: &[1, 1, 1, 1],
            ..c(&[3, 24, 12, 11], &[16, 24, 3, 3], 1, Winograd)
        },
        // Output channels over three blocks of `U`, the last one partial; the channel chunks
        // of `check` start inside blocks.
        C {
            pads: &[1, 1, 1, 1],
            ..c(&[1, 16, 6, 6], &[136, 16, 3, 3], 1, Winograd)
        },
    ]
}

#[test]
fn winograd_matches_the_interpreter_with_each_epilogue() {
    for (i, k) in winograd_cases().iter().enumerate() {
        let mut env = Env::new();
        let x = env.input(k.x);
        let w = env.weight(k.w);
        let b = env.weight(&[k.w[0]]);
        let node = env.node(conv_op(k), vec![Some(x), Some(w), Some(b)]);
        let (plan, _, _) = build_plan(&env.g, node, &[]).expect("plans");
        let y = env.data[&env.g.node(node).outputs[0]].shape().to_vec();
        // Small cases keep the tests fast; most are too small for Winograd to be chosen, so it
        // is forced.
        assert_eq!(
            plan.path_kind() == k.path,
            super::winograd::pays(k.x[1], k.w[0], &y[2..]) && k.x[0] == 1,
            "case {i}"
        );
        let res = env.input(&y);
        let winograd = |g: &sparsec_ir::Graph, n, e: &[Epilogue]| {
            super::lower_conv_path(g, n, e, Some(Path::Winograd))
        };
        for e in [
            vec![],
            vec![Epilogue::Relu],
            vec![Epilogue::AddTensor(res), Epilogue::Relu],
        ] {
            let lk = check(&env, node, &e, 1, winograd);
            assert!(lk
                .args
                .iter()
                .any(|a| matches!(a, crate::codegen::Arg::Packed(_))));
        }
        let forced = |g: &sparsec_ir::Graph, n, e: &[Epilogue]| {
            super::lower_conv_path(g, n, e, Some(Path::Im2col))
        };
        check(&env, node, &[Epilogue::Relu], 1, forced);
    }
}

#[test]
fn winograd_only_for_3x3_stride_1_constant_weights_and_enough_channels() {
    // `(batch, input channels, output channels, kernel, stride, dilation, group, constant
    // weight, input size)` and whether Winograd is chosen (padding 1, so the output size is the
    // input size at stride 1): at least 9 tiles and 64 input channels, or 100 tiles and 16;
    // batches of images under 128 output pixels keep the batched im2col.
    let shapes = [
        (1, 16, 16, 3, 1, 1, 1, true, 20, true),
        (1, 16, 16, 3, 1, 1, 1, true, 18, false),
        (1, 64, 64, 3, 1, 1, 1, true, 6, true),
        (1, 64, 64, 3, 1, 1, 1, true, 4, false),
        (1, 63, 64, 3, 1, 1, 1, true, 8, false),
        (2, 16, 16, 3, 1, 1, 1, true, 20, true),
        (2, 64, 64, 3, 1, 1, 1, true, 8, false),
        (1, 15, 16, 3, 1, 1, 1, true, 20, false),
        (1, 16, 15, 3, 1, 1, 1, true, 20, false),
        (1, 16, 16, 3, 2, 1, 1, true, 20, false),
        (1, 16, 16, 3, 1, 2, 1, true, 20, false),
        (1, 32, 32, 3, 1, 1, 2, true, 20, false),
        (1, 16, 16, 5, 1, 1, 1, true, 20, false),
        (1, 16, 16, 3, 1, 1, 1, false, 20, false),
    ];
    for (n, ci, co, k, st, dil, group, constant, hw, want) in shapes {
        let mut env = Env::new();
        let x = env.input(&[n, ci, hw, hw]);
        let w = if constant {
            env.weight(&[co, ci / group, k, k])
        } else {
            env.input(&[co, ci / group, k, k])
        };
        let op = Op::Conv {
            auto_pad: "NOTSET".into(),
            dilations: vec![dil as i64; 2],
            group: group as i64,
            kernel_shape: vec![],
            pads: vec![1; 4],
            strides: vec![st as i64; 2],
        };
        let node = env.node(op, vec![Some(x), Some(w), None]);
        let (plan, _, _) = build_plan(&env.g, node, &[]).expect("plans");
        let case = format!(
            "{n} x {ci}>{co} {hw}x{hw} {k}x{k} stride {st} dilation {dil} group {group} \
             constant {constant}"
        );
        assert_eq!(plan.path_kind() == Path::Winograd, want, "{case}");
        // Forcing Winograd works wherever it can compute the convolution.
        let can = k == 3 && st == 1 && dil == 1 && group == 1 && constant;
        let forced = super::lower_conv_path(&env.g, node, &[], Some(Path::Winograd));
        assert_eq!(forced.is_ok(), can, "{case}");
    }
}
