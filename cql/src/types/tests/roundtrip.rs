//! Round trips of random values of random types through every codec.

use super::gen::{random_type, random_value, rng, same};
use crate::types::{decode, encode, from_comparable, to_comparable, CqlType};

#[test]
fn types_round_trip_through_their_canonical_text() {
    let mut rng = rng("types_round_trip_through_their_canonical_text");
    for _ in 0..2000 {
        let ty = random_type(&mut rng, 4);
        assert_eq!(ty.validate(), Ok(()), "{ty}");
        let text = ty.to_string();
        assert_eq!(CqlType::parse(&text), Ok(ty.clone()), "{text}");
        // Upper case and extra whitespace parse to the same type.
        let loose = text.to_uppercase().replace('<', " < ").replace(',', " , ");
        if !matches!(ty, CqlType::Custom(_)) {
            assert_eq!(CqlType::parse(&loose), Ok(ty.clone()), "{loose}");
        }
    }
}

#[test]
fn values_round_trip_through_the_binary_format() {
    let mut rng = rng("values_round_trip_through_the_binary_format");
    for i in 0..4000 {
        let ty = random_type(&mut rng, 4);
        let v = random_value(&mut rng, &ty, i % 3 == 0);
        assert_eq!(v.check(&ty), Ok(()), "{ty} {v:?}");
        let bytes = encode(&v);
        let back = decode(&ty, &bytes).unwrap_or_else(|e| panic!("{ty} {v:?}: {e}"));
        assert!(same(&v, &back), "{ty}\n{v:?}\n{back:?}");
        assert_eq!(back.check(&ty), Ok(()));
    }
}

#[test]
fn values_round_trip_through_the_comparable_encoding() {
    let mut rng = rng("values_round_trip_through_the_comparable_encoding");
    for i in 0..4000 {
        let ty = random_type(&mut rng, 4);
        let v = random_value(&mut rng, &ty, i % 3 == 0);
        let c = to_comparable(&v);
        let back = from_comparable(&ty, &c).unwrap_or_else(|e| panic!("{ty} {v:?} {c:02x?}: {e}"));
        assert!(same(&v, &back), "{ty}\n{v:?}\n{back:?}");
        assert_eq!(back.check(&ty), Ok(()));
    }
}
