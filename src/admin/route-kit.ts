/**
 * What every route module of the admin API shares: a sub-app factory whose request validation answers
 * 400 `{error, detail}` in words, the bearer-auth security requirement and its error responses, and
 * writing an {@link ApiError} as JSON.
 * @module
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { ApiError, errorResponse } from "./errors.ts";

/** The OpenAPI security requirement of every route that needs (or may need) the token. */
export const bearer = [{ bearerAuth: [] as string[] }];

/** The error responses of a route behind the token check. */
export const authErrors = {
  401: errorResponse("No bearer token (on a mutation, or on any read over TCP)."),
  403: errorResponse("A bearer token that is not the admin token."),
};

/** A schema issue as zod reports it; a union's carries each alternative's issues. */
export interface SchemaIssue {
  /** Where in the input. */
  path: readonly PropertyKey[];
  /** What is wrong. */
  message: string;
  /** Zod's issue code. */
  code?: string;
  /** For a union: each alternative's issues. */
  errors?: readonly (readonly SchemaIssue[])[];
}

/**
 * A union's issues replaced by those of the alternative that came closest (fewest issues; the first on
 * a tie), so that `{"proto":"tcp"}` is told its port is missing rather than "invalid input".
 */
function flattenUnions(issues: readonly SchemaIssue[]): SchemaIssue[] {
  return issues.flatMap((i) => {
    if (i.code !== "invalid_union" || !i.errors || i.errors.length === 0) return [i];
    const closest = i.errors.reduce((best, e) => e.length < best.length ? e : best);
    return flattenUnions(closest).map((e) => ({ ...e, path: [...i.path, ...e.path] }));
  });
}

/** Formats zod issues as "path: message; path: message" (at most three). */
export function describeIssues(schemaIssues: readonly SchemaIssue[]): string {
  const issues = flattenUnions(schemaIssues);
  const parts = issues.slice(0, 3).map((i) => {
    const where = i.path.reduce<string>(
      (s, k) => typeof k === "number" ? `${s}[${k}]` : s === "" ? String(k) : `${s}.${String(k)}`,
      "",
    );
    return `${where || "body"}: ${i.message}`;
  });
  return parts.join("; ") + (issues.length > 3 ? ` (and ${issues.length - 3} more)` : "");
}

/** Answers `e` as JSON `{error, detail}` (401 with `WWW-Authenticate`), never cached. */
export function errorJson(c: Context, e: ApiError): Response {
  if (e.status === 401) c.header("WWW-Authenticate", 'Bearer realm="twofold-admin"');
  c.header("Cache-Control", "no-store");
  return c.json(e.body, e.status);
}

/** A (sub-)app of the admin API: requests that fail their route schema are answered 400 in words. */
export function routeApp(): OpenAPIHono {
  return new OpenAPIHono({
    defaultHook: (result, c) => {
      if (result.success) return;
      const where = result.target === "json" ? "the request body" : `the ${result.target}`;
      return errorJson(
        c,
        new ApiError(
          400,
          result.target === "json" ? "invalid_body" : "bad_request",
          `${where} does not have the expected shape: ${describeIssues(result.error.issues)}`,
        ),
      );
    },
  });
}
