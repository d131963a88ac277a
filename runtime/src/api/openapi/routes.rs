//! The routes that are not session operations, each described once: the router
//! in `api.rs` lists the same paths, and a test sends a request to every
//! documented one.

use sessiond_client::ErrorCode::*;
use sessiond_client::model::{
    ClientCommand, CreateSessionRequest, EventsQuery, Health, LaggedView, ListSessionsQuery,
    MessageView, NodeView, PreviewRequest, PreviewResponse, RetentionRequest, RetentionView,
    ServerFrame, SessionChangedView, SessionEnvelope, SessionListResponse, StalledView, StatusView,
};
use utoipa::openapi::path::{OperationBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::{
    ContentBuilder, HttpMethod, ObjectBuilder, OpenApi, Required, ResponseBuilder, Type,
};
use utoipa::{PartialSchema, ToSchema};

use super::{INTERNAL, add, errors, json, object, param, params, register, session_id};

/// Why a project route answers 400 for its path.
const BAD_PROJECT: &str = "the project is not a slug `[a-z0-9][a-z0-9_-]{0,62}`";
/// Why a route with a JSON body answers 400 for it.
const BAD_BODY: &str =
    "the body is not a JSON object of this shape sent as `Content-Type: application/json`";
/// Why a route with a body answers 413.
const TOO_LARGE: &str = "the body is over its limit (2 MiB by default)";
/// Why a route that reads the store answers 503.
const STORE_DOWN: &str = "the store is unreachable; retry";

/// `POST` and `GET /v1/projects/{project}/sessions`: first in the document, as the
/// place where sessions start.
pub(super) fn create_and_list(doc: &mut OpenApi) {
    let path = "/v1/projects/{project}/sessions";
    let request = body::<CreateSessionRequest>(doc);
    let created = ResponseBuilder::new()
        .description(
            "Created; with a `prompt`, answered once the prompt is durable, with its `run`.",
        )
        .content("application/json", json::<SessionEnvelope>(doc))
        .build();
    let create = OperationBuilder::new()
        .operation_id(Some("create_session"))
        .tag("projects")
        .summary(Some("Create a session"))
        .description(Some(
            "Creates a session in the project (which needs no creation of its own). With \
             `prompt`, also sends it. With `idempotency_key`, a repeat within 24 h answers the \
             first session and sends nothing again.",
        ))
        .parameter(project())
        .request_body(Some(request))
        .response("201", created);
    let create = errors(
        create,
        &[
            (InvalidRequest, BAD_PROJECT),
            (InvalidRequest, BAD_BODY),
            (
                InvalidRequest,
                "a field breaks its rule (key, label, `env`, `cwd`, `max_turns`, \
                 `idempotency_key`), or `parent_id` names no session of this project",
            ),
            (
                Conflict,
                "the key is already used by another session of the project",
            ),
            (PayloadTooLarge, TOO_LARGE),
            (
                PayloadTooLarge,
                "`prompt` or `system_prompt` is over its limit (1 MiB, 256 KiB by default)",
            ),
            (Unavailable, STORE_DOWN),
            (Timeout, "the new session did not take the prompt in time"),
            (Internal, INTERNAL),
        ],
    );
    add(doc, HttpMethod::Post, path, create.build());

    let listed = ResponseBuilder::new()
        .description("One page of sessions, newest activity first.")
        .content("application/json", json::<SessionListResponse>(doc))
        .build();
    let list = OperationBuilder::new()
        .operation_id(Some("list_sessions"))
        .tag("projects")
        .summary(Some("List a project's sessions"))
        .parameter(project())
        .parameters(Some(query::<ListSessionsQuery>()))
        .response("200", listed);
    let list = errors(
        list,
        &[
            (InvalidRequest, BAD_PROJECT),
            (
                InvalidRequest,
                "the query has an unknown field, `status` is not a session status, or `limit` \
                 is out of 1 to 100",
            ),
            (Unavailable, STORE_DOWN),
            (Internal, INTERNAL),
        ],
    );
    add(doc, HttpMethod::Get, path, list.build());
}

/// The other routes, after the session operations.
pub(super) fn the_rest(doc: &mut OpenApi) {
    session_streams(doc);
    projects(doc);
    node(doc);
}

/// A session's SSE stream and WebSocket.
fn session_streams(doc: &mut OpenApi) {
    let stream = ResponseBuilder::new()
        .description(
            "Server-Sent Events: `message` (data `MessageView`; `id:` is its seq, the resume \
             point), `status` (data `StatusView`, first the current one), `lagged` (data \
             `LaggedView`: the stream re-reads the log), `stalled` (data `StalledView`) and \
             `error` (data `ErrorBody`; the stream ends after it). Status events carry no id, \
             so they never move the resume point.",
        )
        .content("text/event-stream", event_stream())
        .build();
    let last_event_id = param(
        "Last-Event-ID",
        ParameterIn::Header,
        false,
        Some("Resume after this message seq; wins over `after_seq`.".into()),
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .minimum(Some(0)),
    );
    for schema in [
        register::<MessageView>,
        register::<StatusView>,
        register::<LaggedView>,
        register::<StalledView>,
    ] {
        schema(doc);
    }
    let events = OperationBuilder::new()
        .operation_id(Some("session_events"))
        .tag("sessions")
        .summary(Some("Follow a session's events (SSE)"))
        .description(Some(
            "Replays the committed messages after the resume point, then follows live, with no \
             gap and no duplicate across reconnects.",
        ))
        .parameter(session_id())
        .parameters(Some(query::<EventsQuery>()))
        .parameter(last_event_id)
        .response("200", stream);
    let events = errors(
        events,
        &[
            (
                InvalidRequest,
                "the session id is not a UUID, `Last-Event-ID` is not a seq, or the query has \
                 an unknown field",
            ),
            (NotFound, "no such session"),
            (Unavailable, STORE_DOWN),
            (Internal, INTERNAL),
        ],
    );
    add(
        doc,
        HttpMethod::Get,
        "/v1/sessions/{id}/events",
        events.build(),
    );

    register::<ClientCommand>(doc);
    register::<ServerFrame>(doc);
    let switched = ResponseBuilder::new()
        .description(
            "Switching Protocols: the session's WebSocket, one JSON text frame per message: \
             `ClientCommand` in, `ServerFrame` out (the SSE stream's events, and a `reply` per \
             command). docs/websocket.md is its reference.",
        )
        .build();
    let ws = OperationBuilder::new()
        .operation_id(Some("session_websocket"))
        .tag("sessions")
        .summary(Some("A session's WebSocket: its events and operations"))
        .parameter(session_id())
        .parameters(Some(query::<EventsQuery>()))
        .response("101", switched);
    let ws = errors(
        ws,
        &[
            (
                InvalidRequest,
                "the session id is not a UUID, the query has an unknown field, or the request \
                 is no WebSocket upgrade",
            ),
            (NotFound, "no such session"),
            (Unavailable, STORE_DOWN),
            (Internal, INTERNAL),
        ],
    );
    add(doc, HttpMethod::Get, "/v1/sessions/{id}/ws", ws.build());
}

/// Preview, by key, project events and retention.
fn projects(doc: &mut OpenApi) {
    let request = body::<PreviewRequest>(doc);
    let previews = ResponseBuilder::new()
        .description("One preview per id asked, in the order asked.")
        .content("application/json", json::<PreviewResponse>(doc))
        .build();
    let preview = OperationBuilder::new()
        .operation_id(Some("preview_sessions"))
        .tag("sessions")
        .summary(Some("The last messages of many sessions"))
        .request_body(Some(request))
        .response("200", previews);
    let preview = errors(
        preview,
        &[
            (InvalidRequest, BAD_BODY),
            (
                InvalidRequest,
                "`ids` holds none or more than 64, or `limit` (1 to 100) or `max_chars` (1 to \
                 100000) is out of range",
            ),
            (PayloadTooLarge, TOO_LARGE),
            (Unavailable, STORE_DOWN),
            (Internal, INTERNAL),
        ],
    );
    add(
        doc,
        HttpMethod::Post,
        "/v1/sessions/preview",
        preview.build(),
    );

    let found = ResponseBuilder::new()
        .description("The session with this key.")
        .content("application/json", json::<SessionEnvelope>(doc))
        .build();
    let key = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"));
    let by_key = OperationBuilder::new()
        .operation_id(Some("session_by_key"))
        .tag("projects")
        .summary(Some("Find a session by its key"))
        .parameter(project())
        .parameter(param(
            "key",
            ParameterIn::Path,
            true,
            Some("The session's key.".into()),
            key,
        ))
        .response("200", found);
    let by_key = errors(
        by_key,
        &[
            (InvalidRequest, BAD_PROJECT),
            (InvalidRequest, "the key is not a session key"),
            (NotFound, "no session of the project has this key"),
            (Unavailable, STORE_DOWN),
            (Internal, INTERNAL),
        ],
    );
    let path = "/v1/projects/{project}/sessions/by-key/{key}";
    add(doc, HttpMethod::Get, path, by_key.build());

    register::<SessionChangedView>(doc);
    let stream = ResponseBuilder::new()
        .description(
            "Server-Sent Events, live only and without ids: `sessions.changed` (data \
             `SessionChangedView`), `status` (data `StatusView`), and `error` (data \
             `ErrorBody`; the stream ends after it). A client that reconnects lists the \
             project again.",
        )
        .content("text/event-stream", event_stream())
        .build();
    let events = OperationBuilder::new()
        .operation_id(Some("project_events"))
        .tag("projects")
        .summary(Some("Follow a project's sessions (SSE)"))
        .parameter(project())
        .response("200", stream);
    let events = errors(
        events,
        &[
            (InvalidRequest, BAD_PROJECT),
            (Unavailable, STORE_DOWN),
            (Internal, INTERNAL),
        ],
    );
    add(
        doc,
        HttpMethod::Get,
        "/v1/projects/{project}/events",
        events.build(),
    );

    let path = "/v1/projects/{project}/retention";
    let policy = ResponseBuilder::new()
        .description("The project's retention policy (the node's default when it set none).")
        .content("application/json", json::<RetentionView>(doc))
        .build();
    let get = OperationBuilder::new()
        .operation_id(Some("get_retention"))
        .tag("projects")
        .summary(Some("Read a project's retention policy"))
        .parameter(project())
        .response("200", policy.clone());
    let get = errors(
        get,
        &[
            (InvalidRequest, BAD_PROJECT),
            (Unavailable, STORE_DOWN),
            (Internal, INTERNAL),
        ],
    );
    add(doc, HttpMethod::Get, path, get.build());
    let request = body::<RetentionRequest>(doc);
    let set = OperationBuilder::new()
        .operation_id(Some("set_retention"))
        .tag("projects")
        .summary(Some(
            "Set a project's retention policy and apply it at once",
        ))
        .parameter(project())
        .request_body(Some(request))
        .response("200", policy);
    let set = errors(
        set,
        &[
            (InvalidRequest, BAD_PROJECT),
            (InvalidRequest, BAD_BODY),
            (
                InvalidRequest,
                "`max_sessions` is out of 1 to 50 or `max_age_days` out of 1 to 365",
            ),
            (PayloadTooLarge, TOO_LARGE),
            (Unavailable, STORE_DOWN),
            (Internal, INTERNAL),
        ],
    );
    add(doc, HttpMethod::Put, path, set.build());
}

/// The node, this document, health and metrics.
fn node(doc: &mut OpenApi) {
    let info = ResponseBuilder::new()
        .description("This node: id, store, sessions, peers.")
        .content("application/json", json::<NodeView>(doc))
        .build();
    let node = OperationBuilder::new()
        .operation_id(Some("node"))
        .tag("node")
        .summary(Some("This node's id, store and session counts"))
        .response("200", info);
    let node = errors(node, &[(Unavailable, STORE_DOWN), (Internal, INTERNAL)]);
    add(doc, HttpMethod::Get, "/v1/node", node.build());

    let document = ResponseBuilder::new()
        .description("This document: OpenAPI 3.1, generated from the code.")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                .build(),
        )
        .build();
    let openapi = OperationBuilder::new()
        .operation_id(Some("openapi"))
        .tag("node")
        .summary(Some("The API's OpenAPI document"))
        .response("200", document);
    let openapi = errors(openapi, &[(Internal, INTERNAL)]);
    add(doc, HttpMethod::Get, "/v1/openapi.json", openapi.build());

    let alive = ResponseBuilder::new()
        .description("The process serves HTTP.")
        .content("application/json", json::<Health>(doc))
        .build();
    let healthz = OperationBuilder::new()
        .operation_id(Some("healthz"))
        .tag("node")
        .summary(Some("Liveness"))
        .description(Some(
            "Answers 200 while the process serves HTTP; it has no error.",
        ))
        .response("200", alive);
    add(doc, HttpMethod::Get, "/healthz", healthz.build());

    let ready = ResponseBuilder::new()
        .description("The store answers too.")
        .content("application/json", json::<Health>(doc))
        .build();
    let readyz = OperationBuilder::new()
        .operation_id(Some("readyz"))
        .tag("node")
        .summary(Some("Readiness"))
        .response("200", ready);
    let readyz = errors(
        readyz,
        &[
            (
                Unavailable,
                "the store does not answer, or the node is stopping",
            ),
            (Internal, INTERNAL),
        ],
    );
    add(doc, HttpMethod::Get, "/readyz", readyz.build());

    let text = ResponseBuilder::new()
        .description("Prometheus text exposition format.")
        .content(
            "text/plain; version=0.0.4",
            ContentBuilder::new().schema(Some(String::schema())).build(),
        )
        .build();
    let metrics = OperationBuilder::new()
        .operation_id(Some("metrics"))
        .tag("node")
        .summary(Some("Prometheus metrics"))
        .description(Some(
            "Answers 200 with the node's metrics; it has no error.",
        ))
        .response("200", text);
    add(doc, HttpMethod::Get, "/metrics", metrics.build());
}

/// The `{project}` of every `/v1/projects/{project}` path.
fn project() -> utoipa::openapi::path::Parameter {
    let slug = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[a-z0-9][a-z0-9_-]{0,62}$"));
    param(
        "project",
        ParameterIn::Path,
        true,
        Some("The project's slug; a project needs no creation.".into()),
        slug,
    )
}

/// The fields of query type `T` as query parameters.
fn query<T: ToSchema>() -> Vec<utoipa::openapi::path::Parameter> {
    let fields = object(T::schema());
    let names: Vec<&str> = fields.properties.keys().map(String::as_str).collect();
    params(&fields, &names, ParameterIn::Query)
}

/// A required JSON body of type `T`.
fn body<T: ToSchema>(doc: &mut OpenApi) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content("application/json", json::<T>(doc))
        .build()
}

/// An SSE stream: text whose events the response's description names.
fn event_stream() -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(String::schema())).build()
}
