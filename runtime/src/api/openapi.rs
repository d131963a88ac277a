//! The API's OpenAPI 3.1 document, built from the code. The schemas are the wire
//! types' own (`sessiond_client` with its `openapi` feature derives
//! `utoipa::ToSchema` on them); each session operation's route is read from its
//! type by [`operation`], which `crate::ops::OPERATIONS` runs for every entry, so a
//! new operation is documented without a line here; the other routes are
//! described once, in `routes`. Every route lists the error codes it may answer.
//!
//! Served at `GET /v1/openapi.json`. docs/openapi.json is [`render`]'s text
//! (`cargo run --locked -- openapi > docs/openapi.json`); a test fails when the
//! two differ.
//!
//! # Layout
//! - this file: [`document`], [`render`], the route handler, the generic
//!   [`operation`] and the pieces every route uses (schemas, parameters, errors)
//! - `routes`: the routes that are not session operations

mod routes;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response as HttpResponse};
use sessiond_client::ErrorCode;
use sessiond_client::model::ErrorBody;
use sessiond_client::ops::{Input, Method};
use utoipa::openapi::path::{
    Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayItems, KnownFormat, SchemaFormat, SchemaType,
};
use utoipa::openapi::tag::Tag;
use utoipa::openapi::{
    Components, ContentBuilder, Header, HttpMethod, InfoBuilder, Object, ObjectBuilder, OpenApi,
    OpenApiBuilder, Ref, RefOr, Required, ResponseBuilder, Schema, ServerBuilder, Type,
};
use utoipa::{PartialSchema, ToSchema};

use super::error::ApiResult;
use crate::error::Error;
use crate::ops::Serve;

/// What the document says of the API as a whole.
const ABOUT: &str = "HTTP/JSON API of sessiond, which hosts AI-agent sessions; docs/api.md \
explains each route. This document is generated from the code (`sessiond openapi`, also served \
at `GET /v1/openapi.json`). Every error answers the `ErrorBody` shape with a stable `code`, and \
each route lists the codes it may answer. Any path answers 405 `method_not_allowed` (with an \
`Allow` header) for a method it does not serve, and an unknown path 404 `not_found`. Request \
bodies are JSON with `Content-Type: application/json` (abort's may be left out), at most 2 MiB \
by default. There is no auth yet: requests act for the node's default tenant. Every session \
operation (tag `sessions`, paths under `/v1/sessions/{id}`) also runs over the session's \
WebSocket as a frame `{\"id\", \"op\", ...fields}` whose `op` is the route's `operationId`.";

/// Why any route may answer 500.
const INTERNAL: &str = "a bug; the answer's `error_id` names the server's log line";

/// The API's OpenAPI document.
pub fn document() -> OpenApi {
    let info = InfoBuilder::new()
        .title("sessiond API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(ABOUT))
        .build();
    let server = ServerBuilder::new()
        .url("http://127.0.0.1:7411")
        .description(Some("`sessiond serve` default"))
        .build();
    let mut doc = OpenApiBuilder::new()
        .info(info)
        .servers(Some([server]))
        .tags(Some([
            tag("sessions", "A session and the operations on it."),
            tag("projects", "A project's sessions, events and retention."),
            tag(
                "node",
                "The node: identity, health, metrics, this document.",
            ),
        ]))
        .components(Some(Components::new()))
        .build();
    register::<ErrorBody>(&mut doc);
    let method_not_allowed = ResponseBuilder::new()
        .description(
            "`method_not_allowed`: the path exists, not with this method; the `Allow` header \
             lists the methods it takes. Any path may answer it.",
        )
        .header("Allow", Header::new(String::schema()))
        .content("application/json", error_content())
        .build();
    components(&mut doc)
        .responses
        .insert("MethodNotAllowed".into(), method_not_allowed.into());
    routes::create_and_list(&mut doc);
    for op in crate::ops::OPERATIONS {
        op.openapi(&mut doc);
    }
    routes::the_rest(&mut doc);
    any_value_readable(&mut doc);
    doc
}

/// The document as served and as docs/openapi.json holds it: pretty JSON, paths in
/// the order they are added, properties in field order, then a newline.
pub fn render() -> Result<String, serde_json::Error> {
    Ok(document().to_pretty_json()? + "\n")
}

/// `GET /v1/openapi.json`.
pub(super) async fn serve() -> ApiResult<HttpResponse> {
    let text = render().map_err(|e| Error::Internal(format!("openapi document: {e}")))?;
    Ok(([(CONTENT_TYPE, "application/json")], text).into_response())
}

/// Adds the route of session operation `O`, all of it read from the type: the
/// method and path of `O::ROUTE` (`{field}` segments become path parameters), its
/// other fields as the query or the JSON body as `ROUTE.input` says, the success
/// status with `O::Reply`'s schema (none for 204), and its errors: those of every
/// session operation, by its input and whether it changes the session, plus
/// `O::ERRORS`.
pub(crate) fn operation<O>(doc: &mut OpenApi)
where
    O: Serve + ToSchema,
    O::Reply: ToSchema,
{
    let route = O::ROUTE;
    let fields = object(O::schema());
    let in_path: Vec<&str> = route
        .path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect();
    let mut builder = OperationBuilder::new()
        .operation_id(Some(O::NAME))
        .tag("sessions")
        .description(fields.description.clone())
        .parameter(session_id());
    builder = builder.parameters(Some(params(&fields, &in_path, ParameterIn::Path)));
    match route.input {
        Input::None => {}
        Input::Query => {
            let names: Vec<&str> = fields.properties.keys().map(String::as_str).collect();
            let query: Vec<&str> = names.into_iter().filter(|n| !in_path.contains(n)).collect();
            builder = builder.parameters(Some(params(&fields, &query, ParameterIn::Query)));
        }
        Input::Body | Input::OptionalBody => {
            // The fields in the path are not in the body: such a body is the type's
            // schema without them, inline; any other is the type's named schema.
            let schema = if in_path.is_empty() {
                register::<O>(doc)
            } else {
                let mut body = fields.clone();
                body.description = None;
                for name in &in_path {
                    body.properties.shift_remove(*name);
                    body.required.retain(|r| r != name);
                }
                RefOr::T(Schema::Object(body))
            };
            let required = match route.input {
                Input::Body => Required::True,
                _ => Required::False,
            };
            let body = RequestBodyBuilder::new()
                .required(Some(required))
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(schema)).build(),
                )
                .build();
            builder = builder.request_body(Some(body));
        }
    }
    let success = if route.success == StatusCode::NO_CONTENT.as_u16() {
        ResponseBuilder::new()
            .description(reason(route.success))
            .build()
    } else {
        let description = object(O::Reply::schema())
            .description
            .unwrap_or_else(|| reason(route.success));
        let reply = register::<O::Reply>(doc);
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(reply)).build(),
            )
            .build()
    };
    builder = builder.response(route.success.to_string(), success);
    let builder = errors(builder, &session_errors::<O>());
    let method = match route.method {
        Method::Get => HttpMethod::Get,
        Method::Post => HttpMethod::Post,
        Method::Patch => HttpMethod::Patch,
        Method::Delete => HttpMethod::Delete,
    };
    add(
        doc,
        method,
        &format!("/v1/sessions/{{id}}{}", route.path),
        builder.build(),
    );
}

/// The errors every session operation may answer (by its input, and whether it
/// changes the session and so runs on its actor, maybe on another node), then
/// those of `O` alone.
fn session_errors<O: Serve>() -> Vec<(ErrorCode, &'static str)> {
    use ErrorCode::*;
    let mut errors = vec![(InvalidRequest, "the session id is not a UUID")];
    match O::ROUTE.input {
        Input::None => {}
        Input::Query => errors.push((
            InvalidRequest,
            "the query has a field the operation does not take, or a value of the wrong type",
        )),
        Input::Body => errors.push((
            InvalidRequest,
            "the body is not a JSON object of this shape sent as `Content-Type: application/json`",
        )),
        Input::OptionalBody => errors.push((
            InvalidRequest,
            "the body is neither empty nor a JSON object of this shape",
        )),
    }
    errors.push((NotFound, "no such session"));
    if matches!(O::ROUTE.input, Input::Body | Input::OptionalBody) {
        errors.push((
            PayloadTooLarge,
            "the body is over its limit (2 MiB by default)",
        ));
    }
    if O::MUTATES {
        errors.push((
            Unavailable,
            "the store is unreachable, or the session cannot be served now (stopping, moving \
             between nodes, or its node did not answer); retry",
        ));
        errors.push((
            Timeout,
            "the session did not answer within the operation's deadline; it may or may not have \
             been applied",
        ));
    } else {
        errors.push((Unavailable, "the store is unreachable; retry"));
    }
    errors.extend_from_slice(O::ERRORS);
    errors.push((Internal, INTERNAL));
    errors
}

/// Adds an error response per status to `builder`: its body the error shape, its
/// description each code of that status with when it is answered.
fn errors(mut builder: OperationBuilder, errors: &[(ErrorCode, &str)]) -> OperationBuilder {
    let mut by_status: BTreeMap<u16, Vec<(ErrorCode, Vec<&str>)>> = BTreeMap::new();
    for &(code, why) in errors {
        let codes = by_status.entry(code.http_status()).or_default();
        match codes.iter_mut().find(|(c, _)| *c == code) {
            Some((_, whys)) => whys.push(why),
            None => codes.push((code, vec![why])),
        }
    }
    for (status, codes) in by_status {
        let description: Vec<String> = codes
            .iter()
            .map(|(code, whys)| format!("`{code}`: {}.", whys.join("; ")))
            .collect();
        let response = ResponseBuilder::new()
            .description(description.join("\n\n"))
            .content("application/json", error_content())
            .build();
        builder = builder.response(status.to_string(), response);
    }
    builder
}

/// A JSON body in the error shape.
fn error_content() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ErrorBody::name())))
        .build()
}

/// Adds `operation` to `path` under `method`, beside the path's other methods.
fn add(doc: &mut OpenApi, method: HttpMethod, path: &str, operation: Operation) {
    doc.paths.add_path_operation(path, vec![method], operation);
}

/// The document's components.
fn components(doc: &mut OpenApi) -> &mut Components {
    doc.components.get_or_insert_with(Components::new)
}

/// Puts `T`'s schema, and those it refers to, into the components; a reference
/// to it.
fn register<T: ToSchema>(doc: &mut OpenApi) -> RefOr<Schema> {
    let mut schemas = vec![(T::name().into_owned(), T::schema())];
    T::schemas(&mut schemas);
    components(doc).schemas.extend(schemas);
    Ref::from_schema_name(T::name()).into()
}

/// A JSON body of type `T` (its schema put into the components).
fn json<T: ToSchema>(doc: &mut OpenApi) -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(register::<T>(doc)))
        .build()
}

/// The object a struct's schema describes (an empty one for anything else: the
/// operations and query types are all structs).
fn object(schema: RefOr<Schema>) -> Object {
    match schema {
        RefOr::T(Schema::Object(object)) => object,
        _ => Object::new(),
    }
}

/// The fields `names` of `fields` as parameters `at`. A field's doc becomes the
/// parameter's, and a `null` its type allows is dropped: a query or path value
/// is absent or a value, never `null`.
fn params(fields: &Object, names: &[&str], at: ParameterIn) -> Vec<Parameter> {
    names
        .iter()
        .filter_map(|name| {
            let mut schema = fields.properties.get(*name)?.clone();
            let mut description = None;
            if let RefOr::T(Schema::Object(field)) = &mut schema {
                description = field.description.take();
                if let SchemaType::Array(types) = &field.schema_type {
                    let types: Vec<Type> = types
                        .iter()
                        .filter(|t| **t != Type::Null)
                        .cloned()
                        .collect();
                    field.schema_type = match types.as_slice() {
                        [one] => SchemaType::Type(one.clone()),
                        _ => SchemaType::Array(types),
                    };
                }
            }
            let required = at == ParameterIn::Path || fields.required.iter().any(|r| r == name);
            Some(param(name, at.clone(), required, description, schema))
        })
        .collect()
}

/// A parameter.
fn param(
    name: &str,
    at: ParameterIn,
    required: bool,
    description: Option<String>,
    schema: impl Into<RefOr<Schema>>,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(at)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(description)
        .schema(Some(schema))
        .build()
}

/// The `{id}` of every `/v1/sessions/{id}` path.
fn session_id() -> Parameter {
    let uuid = ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
    param(
        "id",
        ParameterIn::Path,
        true,
        Some("The session (a UUID v7).".into()),
        uuid,
    )
}

/// A tag and what it groups.
fn tag(name: &str, description: &str) -> Tag {
    let mut tag = Tag::new(name);
    tag.description = Some(description.into());
    tag
}

/// The reason phrase of `status` (`OK`, `No Content`, ...).
fn reason(status: u16) -> String {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Success")
        .to_string()
}

/// utoipa 5 writes "any JSON value" (a `serde_json::Value`, a free-form map's
/// values) as a schema without `type`, which its own types cannot read back
/// (juhaku/utoipa#1192), so the document would not round-trip. Says the same in a
/// form they read: a map whose values may be anything gets `additionalProperties:
/// true`, any other such schema lists every JSON type.
fn any_value_readable(doc: &mut OpenApi) {
    for schema in components(doc).schemas.values_mut() {
        readable(schema);
    }
    for item in doc.paths.paths.values_mut() {
        let PathItem {
            get,
            put,
            post,
            delete,
            patch,
            ..
        } = item;
        for op in [get, put, post, delete, patch].into_iter().flatten() {
            let bodies = op
                .request_body
                .iter_mut()
                .flat_map(|b| b.content.values_mut());
            let replies = op.responses.responses.values_mut().flat_map(|r| match r {
                RefOr::T(response) => Some(response.content.values_mut()),
                RefOr::Ref(_) => None,
            });
            for content in bodies.chain(replies.flatten()) {
                content.schema.iter_mut().for_each(readable);
            }
            for param in op.parameters.iter_mut().flatten() {
                param.schema.iter_mut().for_each(readable);
            }
        }
    }
}

/// [`any_value_readable`] for one schema and those inside it.
fn readable(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(object) => {
            if object.schema_type == SchemaType::AnyValue {
                object.schema_type = SchemaType::Array(vec![
                    Type::Object,
                    Type::Array,
                    Type::String,
                    Type::Number,
                    Type::Boolean,
                    Type::Null,
                ]);
            }
            object.properties.values_mut().for_each(readable);
            if let Some(values) = object.additional_properties.as_deref_mut() {
                if let AdditionalProperties::RefOr(RefOr::T(Schema::Object(any))) = values
                    && any.schema_type == SchemaType::AnyValue
                {
                    // What the values are goes to the map, unless it says already.
                    let about_values = any.description.take();
                    *values = AdditionalProperties::FreeForm(true);
                    if object.description.is_none() {
                        object.description = about_values;
                    }
                } else if let AdditionalProperties::RefOr(values) = values {
                    readable(values);
                }
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                readable(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(readable),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(readable),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(readable),
        _ => {}
    }
}
