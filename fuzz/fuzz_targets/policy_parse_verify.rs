//! The policy parser, the minisign check and the acceptance rule on
//! arbitrary input: a policy, optionally followed by a separator and a
//! `.minisig` file (see `tend::policy::fuzzing`). The committed corpus is
//! replayed on stable by `tend`'s test `policy::fuzzing::tests::corpus_regression`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tend::policy::fuzzing::policy_parse_verify(data);
});
