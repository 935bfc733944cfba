/**
 * Runtime checks of messages against the TypeBox schemas of the contracts. Ajv, because our
 * schemas use Kubernetes-style string enums (Type.Unsafe) that TypeBox's own checker rejects.
 */
import { Ajv, type ErrorObject } from 'ajv';
import type { Static, TSchema } from '@sinclair/typebox';

const ajv = new Ajv({ allErrors: false, strict: false, validateFormats: false });

export interface Checker<T extends TSchema> {
  (value: unknown): value is Static<T>;
  /** "field: reason" of the last failed check. */
  problem(): string;
}

export function checker<T extends TSchema>(schema: T): Checker<T> {
  const validate = ajv.compile(schema);
  let last: ErrorObject | undefined;
  const check = ((value: unknown) => {
    const ok = validate(value);
    last = ok ? undefined : (validate.errors?.[0] ?? undefined);
    return ok;
  }) as Checker<T>;
  check.problem = () => {
    if (!last) return '';
    const field = last.instancePath.replace(/^\//, '').replaceAll('/', '.') || (last.params as { missingProperty?: string }).missingProperty || 'request';
    const extra = (last.params as { additionalProperty?: string }).additionalProperty;
    return `${field}${extra ? `.${extra}` : ''}: ${last.message ?? last.keyword}`;
  };
  return check;
}
