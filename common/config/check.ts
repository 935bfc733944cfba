/**
 * Runtime checks of messages against the TypeBox schemas of the contracts. Ajv, because our
 * schemas use Kubernetes-style string enums (Type.Unsafe) that TypeBox's own checker rejects.
 */
import { Ajv, type ErrorObject } from 'ajv';
import type { Static, TSchema } from '@sinclair/typebox';

// One instance for the process: Ajv caches by schema, so a schema checked by two components (TRequest
// in the gateway and in signaling under `npm start`) is compiled once.
const ajv = new Ajv({ allErrors: false, strict: false, validateFormats: false });

export interface Checker<T extends TSchema> {
  (value: unknown): value is Static<T>;
  /** "field: reason" of the last failed check. */
  problem(): string;
  /** The first error of the last failed check, for callers that word it themselves. */
  error(): ErrorObject | undefined;
}

export function checker<T extends TSchema>(schema: T): Checker<T> {
  const validate = ajv.compile(schema);
  let last: ErrorObject | undefined;
  const check = ((value: unknown) => {
    const ok = validate(value);
    last = ok ? undefined : (validate.errors?.[0] ?? undefined);
    return ok;
  }) as Checker<T>;
  check.error = () => last;
  check.problem = () => {
    if (!last) return '';
    const field = last.instancePath.replace(/^\//, '').replaceAll('/', '.') || (last.params as { missingProperty?: string }).missingProperty || 'request';
    const extra = (last.params as { additionalProperty?: string }).additionalProperty;
    return `${field}${extra ? `.${extra}` : ''}: ${last.message ?? last.keyword}`;
  };
  return check;
}
