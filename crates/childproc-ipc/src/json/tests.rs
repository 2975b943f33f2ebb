//! The JSON rules against Node's outputs, and the parser against hostile text.

use super::*;

fn s(v: &Value) -> String {
    stringify(v).unwrap()
}

#[test]
fn numbers_format_like_javascript() {
    let cases: &[(f64, &str)] = &[
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (123456789012345680000.0, "123456789012345680000"),
        (0.1, "0.1"),
        (-1e-7, "-1e-7"),
        (5e-324, "5e-324"),
        (f64::MAX, "1.7976931348623157e+308"),
        (1e20, "100000000000000000000"),
        (123e-20, "1.23e-18"),
        (9007199254740992.0, "9007199254740992"),
        (-0.0, "0"),
        (42.0, "42"),
        (f64::NAN, "null"),
        (f64::INFINITY, "null"),
        (f64::NEG_INFINITY, "null"),
    ];
    for (n, text) in cases {
        assert_eq!(s(&Value::Number(*n)), *text, "{n}");
    }
}

#[test]
fn whole_numbers_take_the_short_path_both_ways_and_stay_exact() {
    // Around the bounds of the short paths: 2^53 on writing, 15 digits on reading.
    let cases: &[(f64, &str)] = &[
        (1.0, "1"),
        (-1.0, "-1"),
        (9.0, "9"),
        (10.0, "10"),
        (9007199254740991.0, "9007199254740991"),
        (-9007199254740991.0, "-9007199254740991"),
        (9007199254740994.0, "9007199254740994"),
        (999999999999999.0, "999999999999999"),
        (1000000000000000.0, "1000000000000000"),
        (-123456789012345.0, "-123456789012345"),
    ];
    for (n, text) in cases {
        assert_eq!(s(&Value::Number(*n)), *text, "{n}");
        assert_eq!(parse(text.as_bytes()).unwrap(), Value::Number(*n), "{text}");
    }
    // JSON.parse("-0") is -0; "01" is not JSON; a fraction or an exponent is not whole.
    let minus_zero = parse(b"-0").unwrap();
    assert!(matches!(minus_zero, Value::Number(z) if z == 0.0 && z.is_sign_negative()));
    assert!(parse(b"01").is_err());
    assert_eq!(parse(b"12.5").unwrap(), Value::Number(12.5));
    assert_eq!(parse(b"12e2").unwrap(), Value::Number(1200.0));
    assert_eq!(
        parse(b"[-7,3]").unwrap(),
        Value::Array(vec![Value::from(-7), Value::from(3)])
    );
}

proptest::proptest! {
    #[test]
    fn whole_numbers_print_as_javascript_and_read_back(n in -(1i64 << 54)..(1i64 << 54)) {
        #[allow(clippy::cast_precision_loss)]
        let n = n as f64;
        let text = s(&Value::Number(n));
        let shortest = if n == 0.0 { "0".to_string() } else {
            ryu_js::Buffer::new().format_finite(n).to_string()
        };
        proptest::prop_assert_eq!(&text, &shortest);
        proptest::prop_assert_eq!(parse(text.as_bytes()).unwrap(), Value::Number(n));
        proptest::prop_assert_eq!(text.parse::<f64>().unwrap(), n);
    }
}

#[test]
fn strings_and_keys_of_every_short_length_escape_as_json_stringify() {
    // Around the one-copy path for short strings (32 bytes): plain, and with each byte that
    // needs an escape at each place. serde_json escapes as JSON.stringify does (short forms
    // for \b \f \n \r \t, lowercase \u00xx for the other controls, DEL and UTF-8 raw).
    let specials = ['"', '\\', '\n', '\u{1}', '\u{1f}', '\u{8}'];
    for len in 0..=40usize {
        let plain: String = "aé\u{7f}z".chars().cycle().take(len).collect();
        let mut texts = vec![plain.clone()];
        for at in 0..len {
            for c in specials {
                let mut t: Vec<char> = plain.chars().collect();
                t[at] = c;
                texts.push(t.into_iter().collect());
            }
        }
        for t in texts {
            let quoted = serde_json::to_string(&t).unwrap();
            assert_eq!(s(&Value::String(t.clone())), quoted, "{t:?}");
            let object = Value::object([("x", Value::Null), (t.as_str(), Value::from(1))]);
            assert_eq!(s(&object), format!("{{\"x\":null,{quoted}:1}}"), "{t:?}");
            assert_eq!(parse(quoted.as_bytes()).unwrap(), Value::String(t));
        }
    }
}

#[test]
fn dates_format_like_to_iso_string() {
    let cases: &[(f64, &str)] = &[
        (0.0, "1970-01-01T00:00:00.000Z"),
        (-1.0, "1969-12-31T23:59:59.999Z"),
        (-86400000.0, "1969-12-31T00:00:00.000Z"),
        (8.64e15, "+275760-09-13T00:00:00.000Z"),
        (-8.64e15, "-271821-04-20T00:00:00.000Z"),
        (-62167219200000.0, "0000-01-01T00:00:00.000Z"),
        (-62167219200001.0, "-000001-12-31T23:59:59.999Z"),
        (253402300800000.0, "+010000-01-01T00:00:00.000Z"),
        (1.5, "1970-01-01T00:00:00.001Z"),
        (-1.5, "1969-12-31T23:59:59.999Z"),
        (1577934245678.0, "2020-01-02T03:04:05.678Z"),
    ];
    for (t, text) in cases {
        assert_eq!(s(&Value::Date(*t)), format!("\"{text}\""), "{t}");
    }
    assert_eq!(s(&Value::Date(f64::NAN)), "null");
    assert_eq!(s(&Value::Date(8.64e15 + 1.0)), "null");
}

#[test]
fn refuses_what_node_refuses() {
    for v in [
        Value::Undefined,
        Value::BigInt("1".into()),
        Value::Array(vec![Value::BigInt("1".into())]),
        Value::object([("a", Value::BigInt("-5".into()))]),
    ] {
        assert!(
            matches!(stringify(&v), Err(IpcError::Unsupported { .. })),
            "{v:?}"
        );
    }
    // Not enumerable: never looked at.
    let inside_map = Value::Map(vec![(Value::BigInt("1".into()), Value::Undefined)]);
    assert_eq!(s(&inside_map), "{}");
}

#[test]
fn depth_limit_both_ways() {
    let mut v = Value::Null;
    for _ in 0..Value::MAX_DEPTH {
        v = Value::Array(vec![v]);
    }
    let text = s(&v);
    assert_eq!(parse(text.as_bytes()).unwrap(), v);
    let deeper = Value::Array(vec![v]);
    assert!(matches!(
        stringify(&deeper),
        Err(IpcError::Unsupported { .. })
    ));
    let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = parse(text.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("nesting deeper than 256"), "{err}");
}

#[test]
fn parse_values_and_whitespace() {
    assert_eq!(parse(b"\"s\"").unwrap(), Value::from("s"));
    assert_eq!(parse(b" null\r").unwrap(), Value::Null);
    assert_eq!(parse(b"\ttrue ").unwrap(), Value::Bool(true));
    let z = parse(b"-0").unwrap().as_f64().unwrap();
    assert!(z == 0.0 && z.is_sign_negative());
    assert_eq!(parse(b"1e400").unwrap(), Value::Number(f64::INFINITY));
    assert_eq!(parse(b"-1e400").unwrap(), Value::Number(f64::NEG_INFINITY));
    assert_eq!(parse(b"1E-2").unwrap(), Value::Number(0.01));
    assert_eq!(parse(b"[ 1 , {\"a\" : [] } ]").unwrap().to_owned(), {
        Value::Array(vec![
            Value::from(1),
            Value::object([("a", Value::Array(vec![]))]),
        ])
    });
}

#[test]
fn parse_strings() {
    assert_eq!(
        parse(br#""a\nb\r\t\"\\\/\b\f\u0041\u00e9\u20ac""#).unwrap(),
        Value::from("a\nb\r\t\"\\/\u{8}\u{c}Aé€")
    );
    assert_eq!(parse(br#""\ud83d\ude00""#).unwrap(), Value::from("😀"));
    assert_eq!(
        parse(br#""\ud800x\udc00\ud800\u0041""#).unwrap(),
        Value::from("\u{fffd}x\u{fffd}\u{fffd}A")
    );
    assert_eq!(
        parse("\"é€😀\u{2028}\u{7f}\"".as_bytes()).unwrap(),
        Value::from("é€😀\u{2028}\u{7f}")
    );
}

#[test]
fn repeated_key_keeps_first_position_last_value() {
    assert_eq!(
        parse(br#"{"a":1,"b":2,"a":3}"#).unwrap(),
        Value::object([("a", Value::from(3)), ("b", Value::from(2))])
    );
    // The same past the linear-search threshold.
    let mut text = String::from("{");
    for i in 0..40 {
        text.push_str(&format!("\"k{i}\":{i},"));
    }
    text.push_str("\"k3\":\"last\"}");
    let Value::Object(pairs) = parse(text.as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(pairs.len(), 40);
    assert_eq!(pairs[3], ("k3".to_owned(), Value::from("last")));
    assert_eq!(pairs[39], ("k39".to_owned(), Value::from(39)));
}

#[test]
fn parse_errors_name_the_problem() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "no JSON value"),
        (b" \r", "no JSON value"),
        (b"NaN", "expected value at column 1, found 'N'"),
        (b"[1,]", "expected value at column 4"),
        (b"{\"a\":1", "unexpected end of input in an object"),
        (
            b"{a:1}",
            "unexpected 'a' at column 2 in an object, expected a string key",
        ),
        (b"1 2", "unexpected '2' at column 3 after the JSON value"),
        (b"\"abc", "unterminated string starting at column 1"),
        (
            b"\"a\tb\"",
            "bad control character '\\t' in a string at column 3",
        ),
        (b"\"\\x\"", "unexpected 'x' at column 3 in a string"),
        (b"\"\\u12g4\"", "bad \\u escape"),
        (b"01", "unexpected '1' at column 2"),
        (b"1.", "expected a digit after '.'"),
        (b"1e", "expected an exponent digit"),
        (b"-", "expected a digit"),
        (b"+1", "expected value at column 1"),
        (b"tru", "not `true`"),
    ];
    for (text, reason) in cases {
        match parse(text) {
            Err(IpcError::Malformed { reason: r }) => {
                assert!(
                    r.contains(reason),
                    "{:?}: {r:?}",
                    String::from_utf8_lossy(text)
                )
            }
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(text)),
        }
    }
    assert!(matches!(
        parse(b"\"ab\xff\xfe\""),
        Err(IpcError::InvalidUtf8 { offset: 3 })
    ));
}

#[test]
fn typed_helpers() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Msg {
        n: u32,
        s: String,
    }
    let m = Msg {
        n: 7,
        s: "é\n".into(),
    };
    let text = to_json(&m).unwrap();
    assert_eq!(text, "{\"n\":7,\"s\":\"é\\n\"}".as_bytes());
    assert_eq!(from_json::<Msg>(&text).unwrap(), m);
    assert_eq!(parse(&text).unwrap().get("n"), Some(&Value::from(7)));
    assert!(matches!(
        from_json::<Msg>(br#"{"n":"x","s":""}"#),
        Err(IpcError::Malformed { .. })
    ));
    assert!(matches!(
        from_json::<Msg>(b"{\"n\":1,\"s\":\"\xff\"}"),
        Err(IpcError::InvalidUtf8 { offset: 12 })
    ));
}

#[test]
fn typed_decoding_keeps_every_double_exact() {
    // Found by the from_value fuzz target: serde_json's default float parsing may be one
    // unit in the last place off; a typed f64 must be the number the peer sent.
    for x in [
        2.222222222222222e44,
        1.6666666666666667e46,
        5e-324,
        1.7976931348623157e308,
    ] {
        assert_eq!(
            from_value::<f64>(&Value::Number(x)).unwrap().to_bits(),
            x.to_bits()
        );
        assert_eq!(
            from_json::<f64>(stringify(&Value::Number(x)).unwrap().as_bytes()).unwrap(),
            x
        );
    }
}

/// Keys the envelope tests open.
const KEYS: &[&str] = &["result", "error"];

#[test]
fn an_envelope_is_opened_only_in_the_shape_json_stringify_writes() {
    let opened = |text: &str| envelope(text.as_bytes(), KEYS);
    assert_eq!(
        opened(r#"{"id":7,"result":{"i":1,"s":"a\"b"}}"#),
        Some((
            Value::from(7),
            "result",
            Value::object([("i", Value::from(1)), ("s", Value::from("a\"b"))])
        ))
    );
    assert_eq!(
        opened(r#"{"id":-1.5e3,"error":"boom"}"#),
        Some((Value::from(-1500), "error", Value::from("boom")))
    );
    // Anything else is read whole: other keys, order, whitespace, extra fields, a non-number
    // id, a bad value, text after the object.
    for other in [
        r#"{"id":1,"task":2}"#,
        r#"{"result":2,"id":1}"#,
        r#"{ "id":1,"result":2}"#,
        r#"{"id": 1,"result":2}"#,
        r#"{"id":1,"result":2 }"#,
        r#"{"id":1,"result":2,"id":3}"#,
        r#"{"id":1,"resultx":2}"#,
        r#"{"id":"1","result":2}"#,
        r#"{"id":1,"result":tru}"#,
        r#"{"id":1,"result":2}x"#,
        r#"{"id":1,"result":2"#,
        r#"{"id":1}"#,
        r#"{"id":01,"result":2}"#,
    ] {
        assert_eq!(opened(other), None, "{other}");
    }
}

proptest::proptest! {
    /// What the envelope parse opens is what the whole parse reads, for every value.
    #[test]
    fn an_opened_envelope_holds_what_the_whole_parse_reads(
        id in proptest::num::f64::ANY,
        error: bool,
        value in crate::test_support::arb_json_value(),
    ) {
        let key = if error { "error" } else { "result" };
        let message = Value::object([("id", Value::Number(id)), (key, value)]);
        let Ok(text) = stringify(&message) else { return Ok(()) };
        let Value::Object(whole) = parse(text.as_bytes()).unwrap() else { unreachable!() };
        match envelope(text.as_bytes(), KEYS) {
            Some((id, k, v)) => {
                proptest::prop_assert_eq!(k, key);
                proptest::prop_assert_eq!(whole.len(), 2);
                proptest::prop_assert!(crate::test_support::same(&id, &whole[0].1));
                proptest::prop_assert!(crate::test_support::same(&v, &whole[1].1));
            }
            // Only when JSON has no number for the id (NaN, ±Infinity are written null), or
            // the value was left out (undefined).
            None => proptest::prop_assert!(!id.is_finite() || whole.len() == 1),
        }
    }
}
