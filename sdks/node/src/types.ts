// Type helpers over the generated schema (src/generated/schema.ts). Nothing here restates a
// shape of the API: every request and response type is looked up in the generated types, by
// operation id (`{tag}_{handler}`, e.g. `notifications_create`) or by path and method.
import type { components, operations, paths } from './generated/schema.js';

export type { components, operations, paths };

/** Every named schema of the API, e.g. `Schemas["NotificationView"]`. */
export type Schemas = components['schemas'];

/** An operation id of the API, e.g. `"notifications_create"`. */
export type OperationId = keyof operations;

/** The HTTP methods the client sends. */
export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** The operation at `path` and `method` (never when there is none). */
export type OperationAt<P extends keyof paths, M extends HttpMethod> = paths[P] extends {
  [K in M]: infer O;
}
  ? O
  : never;

/** The paths that have an operation for `method`. */
export type PathsWith<M extends HttpMethod> = {
  [P in keyof paths]: OperationAt<P, M> extends never ? never : P;
}[keyof paths];

type Op<O> = O extends OperationId ? operations[O] : O;
type Responses<O> = Op<O> extends { responses: infer R } ? R : never;

/** The JSON request body of an operation (an id or an operation type). */
export type RequestBody<O> =
  NonNullable<Op<O> extends { requestBody?: infer B } ? B : never> extends {
    content: { 'application/json': infer J };
  }
    ? J
    : never;

/** The query parameters of an operation. */
export type QueryParams<O> = NonNullable<Op<O> extends { parameters: { query?: infer Q } } ? Q : never>;

/** The path parameters of an operation. */
export type PathParams<O> = NonNullable<Op<O> extends { parameters: { path?: infer Q } } ? Q : never>;

type JsonContent<R> = R extends { content: { 'application/json': infer J } } ? J : never;

/** The parsed body of an operation's success responses (`void` for 204 No Content). */
export type ResponseBody<O> = {
  [S in keyof Responses<O>]: S extends 200 | 201 | 202 | 203
    ? JsonContent<Responses<O>[S]>
    : S extends 204
      ? void
      : never;
}[keyof Responses<O>];

type ProblemContent<R> = R extends { content: { 'application/problem+json': infer P } } ? P : never;

/** The documented problem `code`s of one operation, e.g. `ErrorCodeOf<"events_send">`. */
export type ErrorCodeOf<O> = {
  [S in keyof Responses<O>]: ProblemContent<Responses<O>[S]> extends { code?: unknown }
    ? NonNullable<ProblemContent<Responses<O>[S]>['code']>
    : never;
}[keyof Responses<O>];

/** Every problem `code` the API documents, over all operations. */
export type ErrorCode = { [O in OperationId]: ErrorCodeOf<O> }[OperationId];
