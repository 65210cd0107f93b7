//! Every parser a peer's bytes reach answers arbitrary input with an error value, never a panic:
//! the SigV4 `Authorization` header, the Query form, the JSON body decoder (per operation
//! shape), the control-channel frame decoder and the IAM policy parser.
//!
//! A small mutation fuzzer, deterministic (fixed seeds) and bounded (a few thousand inputs per
//! seed, about a second in all), so it runs in the normal test command: it starts from valid
//! inputs and flips, inserts, deletes, duplicates and splices bytes, plus purely random inputs.
//! A panic anywhere fails the test with the input that caused it.

/// xorshift64*: enough randomness for mutations, reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that matter to the parsers under test: delimiters, quotes, escapes, UTF-8 lead bytes.
const INTERESTING: &[u8] = b"=&,;:/\\\"'{}[]%+ \t\r\n\0\xff\xc3\xe2\x80-_.0123456789";

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            2 if at < out.len() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(32)).min(out.len());
                let chunk = out[at..end].to_vec();
                for _ in 0..rng.below(8) {
                    out.splice(at..at, chunk.iter().copied());
                }
            }
            4 => out.truncate(at),
            5 => {
                let from = rng.below(seed.len() + 1);
                let to = (from + rng.below(24)).min(seed.len());
                out.splice(at..at, seed[from..to].iter().copied());
            }
            _ => out.insert(at, rng.next() as u8),
        }
    }
    out
}

/// Feeds `parse` mutations of every seed and random inputs.
fn fuzz(name: &str, seeds: &[&[u8]], rounds: usize, parse: impl Fn(&[u8])) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    for seed in seeds {
        parse(seed);
        for _ in 0..rounds {
            let input = mutate(&mut rng, seed);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(&input)));
            assert!(result.is_ok(), "{name} panicked on {:?}", String::from_utf8_lossy(&input));
        }
    }
    for _ in 0..rounds {
        let len = rng.below(256);
        let input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(&input)));
        assert!(result.is_ok(), "{name} panicked on {input:?}");
    }
}

#[test]
fn sigv4_authorization_header() {
    let seeds: &[&[u8]] = &[
        b"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        b"AWS4-HMAC-SHA256 Credential=mi-0123456789abcdef0/20261202/us-east-1/ssm/aws4_request,SignedHeaders=host;x-amz-date,Signature=AAAA",
    ];
    fuzz("parse_authorization", seeds, 20_000, |b| {
        let _ = corral_wire::sigv4::parse_authorization(&String::from_utf8_lossy(b));
    });
}

#[test]
fn query_form() {
    let seeds: &[&[u8]] = &[
        b"Action=CreateUser&UserName=alice&Version=2010-05-08&Tags.member.1.Key=k&Tags.member.1.Value=v",
        b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2FR&RoleSessionName=s&Version=2011-06-15",
    ];
    fuzz("parse_query_body", seeds, 20_000, |b| {
        if let Ok(q) = corral_wire::query::parse_query_body(b) {
            // The decoded parameters then go through the shape-driven decoder.
            if let Some(op) = corral_api::iam::Operation::from_name(&q.action) {
                let _ = corral_api::query_codec::decode_input::<serde_json::Value>(op.input_shape(), &q.params);
            }
        }
    });
}

#[test]
fn json_bodies_per_operation() {
    use corral_api::ssm::Operation as S;
    let cases: &[(S, &[u8])] = &[
        (S::SendCommand, br#"{"DocumentName":"AWS-RunShellScript","InstanceIds":["mi-0123456789abcdef0"],"Parameters":{"commands":["uptime"]},"MaxConcurrency":"50%","TimeoutSeconds":600}"#),
        (S::CreateActivation, br#"{"IamRole":"R","RegistrationLimit":10,"ExpirationDate":1700000000,"Tags":[{"Key":"k","Value":"v"}]}"#),
        (S::RegisterManagedInstance, br#"{"ActivationCode":"aaaaaaaaaaaaaaaaaaaa","ActivationId":"00000000-0000-4000-8000-000000000000","PublicKey":"k","PublicKeyType":"Rsa","Fingerprint":"f"}"#),
        (S::DescribeInstanceInformation, br#"{"Filters":[{"Key":"PingStatus","Values":["Online"]}],"MaxResults":10,"NextToken":"x"}"#),
    ];
    for (op, seed) in cases {
        fuzz(op.name(), &[seed], 10_000, |b| {
            let _ = corral_api::json_codec::decode_input::<serde_json::Value>(op.input_shape(), b);
        });
    }
}

#[test]
fn control_channel_frames() {
    let message = corral_wire::mgs::ClientMessage {
        message_type: "agent_job_reply".to_string(),
        schema_version: 1,
        created_date: 1_700_000_000_000,
        sequence_number: 7,
        flags: 3,
        message_id: [7; 16],
        payload_type: 1,
        payload: br#"{"jobId":"aws.ssm.c.mi-0123456789abcdef0","content":"{}","topic":"aws.ssm.sendCommand"}"#.to_vec(),
    };
    let frame = message.encode();
    fuzz("ClientMessage::decode", &[&frame], 30_000, |b| {
        let _ = corral_wire::mgs::ClientMessage::decode(b);
    });
}

#[test]
fn iam_policy_documents() {
    let seeds: &[&[u8]] = &[
        br#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":["ssm:Get*","ssm:SendCommand"],"Resource":"arn:aws:ssm:*:*:managed-instance/*","Condition":{"StringEquals":{"ssm:resourceTag/env":["lab","dev"]},"Bool":{"aws:SecureTransport":"true"}}}]}"#,
        br#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}}"#,
    ];
    fuzz("policy::parse", seeds, 20_000, |b| {
        let text = String::from_utf8_lossy(b);
        let _ = corral_iam::policy::parse(&text, corral_iam::policy::PolicyKind::Identity);
        let _ = corral_iam::policy::parse(&text, corral_iam::policy::PolicyKind::Trust);
    });
}
