//! Every TensorProto fixture made by TensorFlow converts bit-exactly, through `.npy`,
//! `.npz` and stdout, with and without `--raw-bits`.

use crate::common::*;

#[test]
fn tensorproto_fixtures_convert_bit_exactly_to_npy() {
    let dir = tempfile::tempdir().unwrap();
    let mut compared = 0;
    for case in cases("tensorproto") {
        let id = case["id"].as_str().unwrap();
        let (input, args) = case_input(&case);
        for t in expected_tensors(&case) {
            let out = dir.path().join(format!("{}.npy", id.replace('/', "_")));
            let mut cmd = vec![input.to_string_lossy().into_owned()];
            cmd.extend(args.clone());
            cmd.extend(["-o".into(), out.to_string_lossy().into_owned()]);
            ok(&cmd);
            let got = read_npy(&out);
            assert_same(id, &t.name, &got, t.expected.as_ref().unwrap());
            assert_eq!(
                std::fs::read(&out).unwrap(),
                std::fs::read(t.expected.as_ref().unwrap()).unwrap(),
                "{id}: not byte-identical to np.save"
            );
            compared += 1;
            if let Some(raw) = &t.expected_raw {
                cmd.push("--raw-bits".into());
                ok(&cmd);
                assert_same(id, &format!("{} (raw bits)", t.name), &read_npy(&out), raw);
                compared += 1;
            }
        }
    }
    assert!(compared >= 131, "only {compared} tensors compared");
}

#[test]
fn tensorproto_fixtures_convert_through_npz_and_stdout() {
    let dir = tempfile::tempdir().unwrap();
    for case in cases("tensorproto") {
        assert_eq!(check_case_npz(&case, dir.path(), &[]), 1);
        let (input, _) = case_input(&case);
        let run = ok([input.as_os_str(), "-o".as_ref(), "-".as_ref()]);
        let t = &expected_tensors(&case)[0];
        assert_same(
            case["id"].as_str().unwrap(),
            &t.name,
            &parse_npy(&run.stdout),
            t.expected.as_ref().unwrap(),
        );
    }
}
