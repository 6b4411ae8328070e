//! Schemas of the API's constrained strings, for the OpenAPI document (`value_type = …`): each
//! pattern is the rule its parser applies, so a client or generator that follows the document
//! sends only what the server accepts.

macro_rules! string_schema {
    ($(#[doc = $doc:literal])* $name:ident, $pattern:literal, $example:literal) => {
        $(#[doc = $doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some($pattern))
                    .examples([$example])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

string_schema!(
    /// An event name, workflow key or topic key: 1 to 100 of `a-z 0-9 . _ -`.
    EventName,
    "^[a-z0-9._-]{1,100}$",
    "order.shipped"
);
string_schema!(
    /// A workflow category: 1 to 64 of `a-z 0-9 . _ -`.
    CategoryName,
    "^[a-z0-9._-]{1,64}$",
    "marketing"
);
/// A name for people: 1 to 100 characters, none a control character, not only white space.
pub struct Label;

/// Not a control character; the second: not white space either (Unicode `White_Space`, as
/// `str::trim` reads it).
const LABEL_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*\
                             [^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]\
                             [^\\u0000-\\u001F\\u007F-\\u009F]*$";

impl utoipa::PartialSchema for Label {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(100))
            .pattern(Some(LABEL_PATTERN))
            .examples(["billing-service"])
            .into()
    }
}

impl utoipa::ToSchema for Label {}

string_schema!(
    /// Your id for a subscriber: 1 to 255 characters.
    ExternalId,
    "^[\\s\\S]{1,255}$",
    "user-1842"
);

/// Whether `text` is a [`Label`].
pub fn is_label(text: &str) -> bool {
    text.chars().count() <= 100 && !text.trim().is_empty() && !text.chars().any(char::is_control)
}
