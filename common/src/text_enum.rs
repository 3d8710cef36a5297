//! Enums stored in `TEXT` columns (the statuses of a service's records): written in the
//! contract's spelling and read back strictly — a word the enum does not know is an error,
//! never a silent default.

/// A closed set of words, each variant spelt as the contract spells it.
pub trait TextEnum: Sized + Copy + 'static {
    /// Every variant.
    const ALL: &'static [Self];

    fn as_str(self) -> &'static str;

    fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|value| value.as_str() == text)
    }
}

/// Lets sqlx bind and read a [`TextEnum`] as PostgreSQL `TEXT`:
/// `common::text_enum_sqlx!(OrderStatus);` beside the enum (sqlx's traits are foreign to
/// both crates, so the impls are generated where the enum lives).
#[macro_export]
macro_rules! text_enum_sqlx {
    ($ty:ty) => {
        impl ::sqlx::Type<::sqlx::Postgres> for $ty {
            fn type_info() -> ::sqlx::postgres::PgTypeInfo {
                <&str as ::sqlx::Type<::sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &::sqlx::postgres::PgTypeInfo) -> bool {
                <&str as ::sqlx::Type<::sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'q> ::sqlx::Encode<'q, ::sqlx::Postgres> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut ::sqlx::postgres::PgArgumentBuffer,
            ) -> ::std::result::Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                let text = $crate::text_enum::TextEnum::as_str(*self);
                <&str as ::sqlx::Encode<'_, ::sqlx::Postgres>>::encode_by_ref(&text, buf)
            }
        }

        impl<'r> ::sqlx::Decode<'r, ::sqlx::Postgres> for $ty {
            fn decode(
                value: ::sqlx::postgres::PgValueRef<'r>,
            ) -> ::std::result::Result<Self, ::sqlx::error::BoxDynError> {
                let text = <&str as ::sqlx::Decode<'r, ::sqlx::Postgres>>::decode(value)?;
                <$ty as $crate::text_enum::TextEnum>::parse(text)
                    .ok_or_else(|| format!("{text:?} is not a {}", stringify!($ty)).into())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::TextEnum;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Light {
        Red,
        Green,
    }

    impl TextEnum for Light {
        const ALL: &'static [Self] = &[Self::Red, Self::Green];
        fn as_str(self) -> &'static str {
            match self {
                Self::Red => "RED",
                Self::Green => "GREEN",
            }
        }
    }

    #[test]
    fn a_word_parses_to_its_variant_and_an_unknown_word_to_nothing() {
        assert_eq!(Light::parse("GREEN"), Some(Light::Green));
        assert_eq!(Light::parse("AMBER"), None);
        assert_eq!(Light::parse("green"), None);
    }
}
