//! Networks whose layer widths do not line up must not compile; the matching network must.

#[test]
fn width_mismatches_do_not_compile() {
    let t = trybuild::TestCases::new();
    t.pass("ui/widths_match.rs");
    t.compile_fail("ui/widths_mismatch.rs");
    t.compile_fail("ui/wrong_input_width.rs");
    t.pass("ui/qnetwork_widths_match.rs");
    t.compile_fail("ui/qnetwork_widths_mismatch.rs");
}
