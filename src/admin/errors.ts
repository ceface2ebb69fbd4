/**
 * Errors of the admin API: every failure is a JSON body `{ "error": "<short code>", "detail": "<human
 * sentence>" }` with the matching HTTP status. Details name what was wrong and how to fix it; they never
 * carry a stack trace, a token or key material.
 * @module
 */
import { z } from "@hono/zod-openapi";

/** The JSON body of every error response. */
export interface ApiErrorBody {
  /** Short machine-readable code, e.g. `unauthorized`, `invalid_value`. */
  error: string;
  /** One human sentence saying what went wrong and how to fix it. */
  detail: string;
}

/** Status codes the admin API answers errors with. */
export type ApiErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 500 | 503;

/** An error a handler throws to answer with `{error, detail}` and `status`. */
export class ApiError extends Error {
  /** HTTP status. */
  readonly status: ApiErrorStatus;
  /** Short code for the `error` field. */
  readonly code: string;

  /** Creates an error answered with `status` and `{ error: code, detail }`. */
  constructor(status: ApiErrorStatus, code: string, detail: string) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }

  /** The response body. */
  get body(): ApiErrorBody {
    return { error: this.code, detail: this.message };
  }
}

/** Zod schema of {@link ApiErrorBody} (registered as the `Error` component of the OpenAPI document). */
export const ErrorSchema = z.object({
  error: z.string().openapi({ example: "invalid_value", description: "Short machine-readable code." }),
  detail: z.string().openapi({
    example: "ports[0].port: 70000 is outside 1..65535",
    description: "One human sentence: what was wrong and how to fix it.",
  }),
}).openapi("Error");

/** An OpenAPI response entry for an error status. */
export function errorResponse(description: string): {
  description: string;
  content: { "application/json": { schema: typeof ErrorSchema } };
} {
  return { description, content: { "application/json": { schema: ErrorSchema } } };
}
