//! `parse_predictor`: PyTorch argument binding, per-axis values, naming, and errors.

use predify_spec::{parse_predictor, AxisValues, ExprErrorKind, Layer, Predictor, UpsampleMode, UpsampleSpec};

fn single(expr: &str) -> Layer {
    match parse_predictor(expr) {
        Ok(Predictor::Single(layer)) => layer,
        other => panic!("{expr}: {other:?}"),
    }
}

fn err(expr: &str) -> (usize, ExprErrorKind) {
    let e = parse_predictor(expr).unwrap_err();
    (e.offset, e.kind)
}

#[test]
fn per_axis_values() {
    let Layer::ConvTranspose(c) = single("ConvTranspose2d(8, 4, kernel_size=(10, 6), stride=(2, 1), padding=[4, 0], output_padding=(1, 0), dilation=(1, 2))") else {
        panic!()
    };
    assert_eq!(c.kernel_size, vec![10, 6]);
    assert_eq!(c.stride, vec![2, 1]);
    assert_eq!(c.padding, vec![4, 0]);
    assert_eq!(c.output_padding, vec![1, 0]);
    assert_eq!(c.dilation, vec![1, 2]);

    let Layer::Upsample(u) = single("Upsample(scale_factor=(2.0, 1.5), mode='bilinear', align_corners=False)") else {
        panic!()
    };
    assert_eq!(
        u,
        UpsampleSpec {
            size: None,
            scale_factor: Some(AxisValues::PerAxis(vec![2.0, 1.5])),
            mode: UpsampleMode::Bilinear,
            align_corners: Some(false),
        }
    );
    assert_eq!(u.scale_factor.as_ref().unwrap().for_dims(2), Some(vec![2.0, 1.5]));

    let Layer::Upsample(u) = single("Upsample(size=(4, 5, 6), mode=\"trilinear\")") else { panic!() };
    assert_eq!(u.size, Some(AxisValues::PerAxis(vec![4, 5, 6])));
    let Layer::Upsample(u) = single("Upsample(None, 2)") else { panic!() };
    assert_eq!((u.size, u.scale_factor, u.mode), (None, Some(AxisValues::Uniform(2.0)), UpsampleMode::Nearest));
    let Layer::Upsample(u) = single("Upsample(scale_factor=1.)") else { panic!() };
    assert_eq!(u.scale_factor, Some(AxisValues::Uniform(1.0)));
}

#[test]
fn ints_expand_to_every_axis() {
    let Layer::Conv(c) = single("Conv3d(2, 4, 3, stride=2, padding=1)") else { panic!() };
    assert_eq!((c.dims, c.kernel_size, c.stride, c.padding), (3, vec![3; 3], vec![2; 3], vec![1; 3]));
    assert_eq!((c.output_padding, c.dilation, c.groups, c.bias), (vec![0; 3], vec![1; 3], 1, true));
}

#[test]
fn positional_and_keyword_arguments_are_equivalent() {
    let all_positional = "ConvTranspose2d(16, 8, 3, 2, 1, 1, 2, False, 1, 'zeros')";
    let all_keyword = "ConvTranspose2d(padding_mode='zeros', dilation=1, bias=False, groups=2, output_padding=1, \
                       padding=1, stride=2, kernel_size=3, out_channels=8, in_channels=16)";
    let mixed = "torch.nn.ConvTranspose2d(16, 8, 3, 2, groups=2, bias=False, padding=(1, 1), output_padding=1)";
    assert_eq!(single(all_positional), single(all_keyword));
    assert_eq!(single(all_positional), single(mixed));
    // Conv's order differs after padding: dilation, groups, bias.
    assert_eq!(
        single("Conv2d(4, 4, 3, 1, 0, 2, 4, False)"),
        single("nn.Conv2d(4, 4, 3, dilation=2, groups=4, bias=False)")
    );
    assert_eq!(single("ReLU(True)"), Layer::ReLU { inplace: true });
    assert_eq!(single("ReLU()"), Layer::ReLU { inplace: false });
    assert_eq!(single("Upsample(None, 2, 'nearest', None, None)"), single("Upsample(scale_factor=2)"));
}

#[test]
fn sequential_vs_single() {
    let one = parse_predictor("Sequential(ReLU())").unwrap();
    assert_eq!(one, Predictor::Sequential(vec![Layer::ReLU { inplace: false }]));
    assert_eq!(one.param_prefix(0), "pmodule.0");
    let bare = parse_predictor("ReLU()").unwrap();
    assert_eq!(bare, Predictor::Single(Layer::ReLU { inplace: false }));
    assert_eq!(bare.param_prefix(0), "pmodule");
    assert_eq!(one.layers(), bare.layers());
    let trailing = parse_predictor("nn.Sequential(\n  Conv2d(1, 2, 3,),\n  ReLU(),\n)").unwrap();
    assert_eq!(trailing.layers().len(), 2);
}

#[test]
fn conv_value_forms() {
    let Layer::Conv(c) = single("Conv2d(2, 2, (3, 5), padding='same')") else { panic!() };
    assert_eq!(c.padding, vec![1, 2]);
    let Layer::Conv(c) = single("Conv2d(2, 2, 3, padding='valid')") else { panic!() };
    assert_eq!(c.padding, vec![0, 0]);
    let Layer::Conv(c) = single("Conv2d(2, 2, (3), bias=True)") else { panic!() };
    assert_eq!(c.kernel_size, vec![3, 3]);
}

#[test]
fn syntax_errors_carry_byte_offsets() {
    assert!(matches!(err("ConvTranspose2d(64, 3"), (21, ExprErrorKind::Unexpected { .. })));
    assert!(matches!(err("ReLU() ReLU()"), (7, ExprErrorKind::Unexpected { .. })));
    assert!(matches!(err(""), (0, ExprErrorKind::Unexpected { .. })));
    assert!(matches!(err("3"), (0, ExprErrorKind::Unexpected { .. })));
    assert_eq!(err("ReLU(inplace=1 $)"), (15, ExprErrorKind::UnexpectedChar('$')));
    assert_eq!(err("Upsample(mode='x)"), (14, ExprErrorKind::UnterminatedString));
    assert_eq!(err("Conv2d(1, 2, 3x)"), (13, ExprErrorKind::InvalidNumber("3x".into())));
    assert!(matches!(err("Conv2d(1, 2, nearest)"), (13, ExprErrorKind::Unexpected { .. })));
    assert_eq!(err(&format!("{}1{}", "(".repeat(100), ")".repeat(100))).1, ExprErrorKind::TooDeep(32));
}

#[test]
fn unknown_layers_are_named() {
    assert_eq!(err("Sequential(ReLU(), Tanh())"), (19, ExprErrorKind::UnknownLayer("Tanh".into())));
    assert_eq!(err("torch.ConvTranspose2d(1, 1, 1)"), (0, ExprErrorKind::UnknownLayer("torch.ConvTranspose2d".into())));
    assert_eq!(err("Conv1d(1, 1, 1)"), (0, ExprErrorKind::UnknownLayer("Conv1d".into())));
    assert_eq!(err("Sequential(Sequential(ReLU()))"), (11, ExprErrorKind::NestedSequential));
    assert_eq!(err("Sequential()"), (11, ExprErrorKind::EmptySequential));
    assert_eq!(err("Sequential(ReLU(), 3)"), (19, ExprErrorKind::SequentialArgument));
    assert_eq!(err("Sequential(a=ReLU())"), (11, ExprErrorKind::SequentialArgument));
}

#[test]
fn arity_errors() {
    assert_eq!(
        err("ReLU(True, False)"),
        (11, ExprErrorKind::TooManyPositional { layer: "ReLU".into(), max: 1, found: 2 })
    );
    assert_eq!(
        err("Conv2d(1, 2, 3, 1, 0, 1, 1, True, 'zeros', 7)"),
        (43, ExprErrorKind::TooManyPositional { layer: "Conv2d".into(), max: 9, found: 10 })
    );
    assert_eq!(
        err("ConvTranspose2d(64, 3)"),
        (21, ExprErrorKind::MissingArgument { layer: "ConvTranspose2d".into(), arg: "kernel_size" })
    );
    assert_eq!(
        err("Conv2d(in_channels=1, kernel_size=3)"),
        (35, ExprErrorKind::MissingArgument { layer: "Conv2d".into(), arg: "out_channels" })
    );
    assert_eq!(
        err("Conv2d(1, 2, 3, stride=1, stride=2)"),
        (26, ExprErrorKind::DuplicateArgument { layer: "Conv2d".into(), arg: "stride".into() })
    );
    assert_eq!(
        err("Conv2d(1, 2, 3, in_channels=1)"),
        (16, ExprErrorKind::DuplicateArgument { layer: "Conv2d".into(), arg: "in_channels".into() })
    );
    assert!(
        matches!(err("Conv2d(1, 2, 3, output_padding=1)"), (16, ExprErrorKind::UnknownKeyword { arg, .. }) if arg == "output_padding")
    );
    assert!(matches!(err("ReLU(in_place=True)"), (5, ExprErrorKind::UnknownKeyword { arg, .. }) if arg == "in_place"));
    assert_eq!(err("Conv2d(1, out_channels=2, 3)"), (26, ExprErrorKind::PositionalAfterKeyword));
}

#[test]
fn value_errors() {
    let invalid = |expr: &str, offset: usize, arg: &str| {
        let (o, kind) = err(expr);
        assert_eq!(o, offset, "{expr}: {kind}");
        assert!(matches!(&kind, ExprErrorKind::InvalidValue { arg: a, .. } if *a == arg), "{expr}: {kind}");
    };
    invalid("Conv2d(0, 2, 3)", 7, "in_channels");
    invalid("Conv2d(1, 2, (3, 3, 3))", 13, "kernel_size");
    invalid("Conv2d(1, 2, (3, 0))", 17, "kernel_size");
    invalid("Conv2d(1, 2, 3, stride=0)", 23, "stride");
    invalid("Conv2d(1, 2, 3, padding=-1)", 24, "padding");
    invalid("Conv2d(4, 6, 3, groups=4)", 23, "groups");
    invalid("Conv2d(4, 6, 3, padding_mode='reflect')", 29, "padding_mode");
    invalid("ConvTranspose2d(4, 6, 3, stride=2, output_padding=2)", 50, "output_padding");
    invalid("Conv2d(1, 1, 2, padding='same')", 24, "padding");
    invalid("Conv2d(1, 1, 3, 2, padding='same')", 27, "padding");
    invalid("Upsample(size=4, scale_factor=2)", 30, "scale_factor");
    invalid("Upsample()", 9, "size");
    invalid("Upsample(scale_factor=0.0)", 22, "scale_factor");
    invalid("Upsample(scale_factor=2, mode='bicubic')", 30, "mode");
    invalid("Upsample(scale_factor=2, align_corners=True)", 39, "align_corners");
    invalid("Upsample(scale_factor=2, recompute_scale_factor=True)", 48, "recompute_scale_factor");
    invalid("Upsample(size=(2, 2, 2), mode='bilinear')", 14, "size");
    invalid("Upsample(size=(2,))", 14, "size");
    // PyTorch accepts output_padding < dilation too.
    assert!(parse_predictor("ConvTranspose2d(4, 6, 3, stride=1, dilation=2, output_padding=1)").is_ok());

    let wrong = |expr: &str, offset: usize, arg: &str| {
        let (o, kind) = err(expr);
        assert_eq!(o, offset, "{expr}: {kind}");
        assert!(matches!(&kind, ExprErrorKind::WrongType { arg: a, .. } if *a == arg), "{expr}: {kind}");
    };
    wrong("Conv2d(1.5, 2, 3)", 7, "in_channels");
    wrong("Conv2d(1, 2, 3, bias=1)", 21, "bias");
    wrong("Conv2d(True, 2, 3)", 7, "in_channels");
    wrong("ReLU(inplace='yes')", 13, "inplace");
    wrong("Upsample(scale_factor='2')", 22, "scale_factor");
    wrong("Upsample(scale_factor=2, mode=2)", 30, "mode");
    wrong("Conv2d(1, 2, ReLU())", 13, "kernel_size");
}

#[test]
fn error_messages_read_well() {
    let e = parse_predictor("Conv2d(1, 2, 3, paddin=1)").unwrap_err();
    assert_eq!(
        e.to_string(),
        "at byte 16: Conv2d has no argument `paddin` (expected one of: in_channels, out_channels, kernel_size, \
         stride, padding, dilation, groups, bias, padding_mode)"
    );
    let e = parse_predictor("Foo(1)").unwrap_err();
    assert!(e.to_string().starts_with("at byte 0: unknown layer type `Foo`"), "{e}");
}
