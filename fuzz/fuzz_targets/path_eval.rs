//! See `tend_workflow::fuzzing::path_eval`. The committed corpus is replayed on
//! stable by `tend-workflow`'s tests in `fuzzing::tests`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tend_workflow::fuzzing::path_eval(data);
});
