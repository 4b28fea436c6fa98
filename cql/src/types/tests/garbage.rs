//! Hostile input: truncations, flipped bytes, lying lengths, deep nesting. Decoders return
//! errors, never panic, never allocate by a claimed length; whatever they accept is valid.

use rand::rngs::StdRng;
use rand::{Rng, RngCore};

use super::gen::{random_type, random_value, rng, same};
use crate::types::{decode, encode, from_comparable, to_comparable, CqlType, TypeError, Value, MAX_DEPTH};

/// Whatever `decode` accepts is a valid value that round-trips.
fn check_decode(ty: &CqlType, bytes: &[u8]) {
    if let Ok(v) = decode(ty, bytes) {
        assert_eq!(v.check(ty), Ok(()), "{ty} {bytes:02x?}");
        let again = decode(ty, &encode(&v)).unwrap_or_else(|e| panic!("{ty} {v:?}: {e}"));
        assert!(same(&v, &again), "{ty} {bytes:02x?}");
    }
}

/// Whatever `from_comparable` accepts is a valid value whose encoding is exactly the input
/// (the decoder is strict: one value, one encoding).
fn check_from_comparable(ty: &CqlType, bytes: &[u8]) {
    if let Ok(v) = from_comparable(ty, bytes) {
        assert_eq!(v.check(ty), Ok(()), "{ty} {bytes:02x?}");
        assert_eq!(to_comparable(&v), bytes, "{ty} {v:?}");
    }
}

fn mutations(rng: &mut StdRng, valid: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // Every truncation.
    for n in 0..valid.len() {
        out.push(valid[..n].to_vec());
    }
    for _ in 0..8 {
        let mut m = valid.to_vec();
        match rng.random_range(0..5) {
            0 if !m.is_empty() => {
                let i = rng.random_range(0..m.len());
                m[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !m.is_empty() => {
                let i = rng.random_range(0..m.len());
                m[i] = *[0x00, 0x01, 0x02, 0x7f, 0x80, 0xff].get(rng.random_range(0..6)).unwrap();
            }
            2 => {
                let i = rng.random_range(0..=m.len());
                m.insert(i, rng.random());
            }
            3 if !m.is_empty() => {
                let i = rng.random_range(0..m.len());
                m.remove(i);
            }
            _ => {
                // A lying 4-byte length somewhere.
                if m.len() >= 4 {
                    let i = rng.random_range(0..=m.len() - 4);
                    let lie: i32 =
                        *[i32::MAX, i32::MIN, -1, -2, 0x0100_0000].get(rng.random_range(0..5)).unwrap();
                    m[i..i + 4].copy_from_slice(&lie.to_be_bytes());
                }
            }
        }
        out.push(m);
    }
    out
}

#[test]
fn mutated_encodings_never_panic() {
    let mut rng = rng("mutated_encodings_never_panic");
    for i in 0..1500 {
        let ty = random_type(&mut rng, 4);
        let v = random_value(&mut rng, &ty, i % 2 == 0);
        let wire = encode(&v);
        for m in mutations(&mut rng, &wire) {
            check_decode(&ty, &m);
        }
        let comparable = to_comparable(&v);
        for m in mutations(&mut rng, &comparable) {
            check_from_comparable(&ty, &m);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = rng("random_bytes_never_panic");
    for _ in 0..20_000 {
        let ty = random_type(&mut rng, 4);
        let n = rng.random_range(0..40);
        let mut bytes = vec![0_u8; n];
        rng.fill_bytes(&mut bytes);
        // Bias towards small numbers, which look like valid lengths and markers.
        for b in bytes.iter_mut() {
            if rng.random_bool(0.5) {
                *b &= 0x03;
            }
        }
        check_decode(&ty, &bytes);
        check_from_comparable(&ty, &bytes);
    }
}

fn nested_list(depth: usize) -> CqlType {
    let mut t = CqlType::Int;
    for _ in 1..depth {
        t = CqlType::List { element: Box::new(t), frozen: true };
    }
    t
}

#[test]
fn nesting_is_bounded() {
    // Valid bytes for a type deeper than the limit: refused at the limit.
    let deep = nested_list(2000);
    let mut bytes = 7_i32.to_be_bytes().to_vec();
    for _ in 1..2000 {
        let mut outer = 1_i32.to_be_bytes().to_vec();
        outer.extend_from_slice(&i32::try_from(bytes.len()).unwrap().to_be_bytes());
        outer.extend_from_slice(&bytes);
        bytes = outer;
    }
    assert_eq!(decode(&deep, &bytes), Err(TypeError::TooDeep { max: MAX_DEPTH }));
    assert_eq!(from_comparable(&deep, &vec![0x02; 100_000]), Err(TypeError::TooDeep { max: MAX_DEPTH }));
    assert!(deep.validate().is_err());
    // At the limit everything works.
    let ok = nested_list(MAX_DEPTH);
    let mut v = Value::Int(7);
    for _ in 1..MAX_DEPTH {
        v = Value::List(vec![v]);
    }
    assert_eq!(v.check(&ok), Ok(()));
    let back = decode(&ok, &encode(&v)).unwrap();
    assert!(same(&v, &back));
    let back = from_comparable(&ok, &to_comparable(&v)).unwrap();
    assert!(same(&v, &back));
    // One more level is refused everywhere.
    let too_deep = nested_list(MAX_DEPTH + 1);
    let v = Value::List(vec![v]);
    assert_eq!(v.check(&too_deep), Err(TypeError::TooDeep { max: MAX_DEPTH }));
    assert_eq!(decode(&too_deep, &encode(&v)), Err(TypeError::TooDeep { max: MAX_DEPTH }));
    assert_eq!(from_comparable(&too_deep, &to_comparable(&v)), Err(TypeError::TooDeep { max: MAX_DEPTH }));
}

#[test]
fn lying_counts_are_rejected_before_allocation() {
    let list = CqlType::List { element: Box::new(CqlType::Int), frozen: true };
    let map = CqlType::Map { key: Box::new(CqlType::Int), value: Box::new(CqlType::Int), frozen: true };
    for ty in [&list, &map] {
        for count in [i32::MAX, 3, 2] {
            let mut bytes = count.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 1]);
            assert!(matches!(decode(ty, &bytes), Err(TypeError::Marshal(_))), "{ty} {count}");
        }
    }
    // An element length beyond the input.
    let bytes = [0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
    assert!(decode(&list, &bytes).is_err());
    // A tuple field length beyond the input.
    assert!(decode(&CqlType::Tuple(vec![CqlType::Blob]), &[0x7f, 0xff, 0xff, 0xff, 1]).is_err());
    // A comparable varint claiming 2^62 magnitude bytes.
    assert!(from_comparable(&CqlType::Varint, &[0xc0, 0x88, 0x40, 0, 0, 0, 0, 0, 0, 0, 1]).is_err());
    // A comparable decimal whose exponent and scale claim 2^40 digits.
    assert!(from_comparable(&CqlType::Decimal, &[0xc0, 0x85, 0x01, 0, 0, 0, 0, 0x0b, 0x00, 0x80]).is_err());
}

#[test]
fn non_canonical_comparable_encodings_are_rejected() {
    let cases: [(CqlType, &[u8]); 12] = [
        (CqlType::Boolean, &[0x02]),
        (CqlType::Float, &[0xff, 0xc0, 0x00, 0x01]),
        (CqlType::Varint, &[0xc0, 0x81, 0x01, 0x00]),
        (CqlType::Varint, &[0xc0, 0x82, 0x00, 0x01, 0x00, 0x01]),
        (CqlType::Decimal, &[0xc0, 0x81, 0x01, 0x0c, 0x00, 0x80]),
        (CqlType::Decimal, &[0xc0, 0x81, 0x01, 0x01, 0x00, 0x7f]),
        (CqlType::Duration, &[0x80, 0x02, 0x00, 0x00]),
        (CqlType::Time, &[0, 0, 0x4e, 0x94, 0x91, 0x4f, 0, 0]),
        (CqlType::Text, &[0xff]),
        (CqlType::Uuid, &[0x02, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        (CqlType::Timeuuid, &[0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        (
            CqlType::Set { element: Box::new(CqlType::Int), frozen: true },
            &[0x02, 0x80, 0, 0, 2, 0x02, 0x80, 0, 0, 1, 0x00],
        ),
    ];
    for (ty, bytes) in cases {
        assert!(from_comparable(&ty, bytes).is_err(), "{ty} {bytes:02x?}");
    }
    // Text nested inside a list must be escaped properly.
    let texts = CqlType::List { element: Box::new(CqlType::Text), frozen: true };
    assert!(from_comparable(&texts, &[0x02, 0x61, 0x00, 0x02, 0x00]).is_err());
    assert!(from_comparable(&texts, &[0x02, 0x61]).is_err());
    // Empty markers only for types that allow empty values.
    assert!(from_comparable(&texts, &[0x01, 0x00]).is_err());
}
