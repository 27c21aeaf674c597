import type { Static, TObject, TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { invalidInput } from './errors.js';

/**
 * A checker for one kind of user document (a job spec, a queue): its shape
 * by the schema, the first fault named as a field a user can find: an
 * unknown field, or a field of the wrong type. What values mean is checked
 * by the document's own builder.
 */
export function documentChecker<S extends TObject>(schema: S): (data: unknown, source: string) => Static<S> {
  const compiled = TypeCompiler.Compile(schema);
  const fields = Object.keys(schema.properties);
  return (data, source) => {
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      throw invalidInput(source === 'request body' ? 'body' : 'file', `${source} must hold one map of fields`);
    }
    for (const key of Object.keys(data)) {
      if (!fields.includes(key)) throw invalidInput(key, `unknown field in ${source} (known: ${fields.join(', ')})`);
    }
    if (compiled.Check(data)) return data;
    const first = compiled.Errors(data).First();
    const path = first?.path.split('/').filter((p) => p !== '') ?? [];
    const field = path.length > 0 ? path.join('.') : 'body';
    const missing = path.length > 0 && (data as Record<string, unknown>)[path[0]] === undefined;
    throw invalidInput(field, missing ? 'missing' : `must be ${describeType(schema.properties[path[0] ?? ''])}`);
  };
}

/** `a string or a number`: what a field's schema accepts, in words. */
function describeType(schema: TSchema | undefined): string {
  const members = (schema?.anyOf as TSchema[] | undefined) ?? (schema ? [schema] : []);
  const words: Record<string, string> = { string: 'a string', number: 'a number', boolean: 'true or false', array: 'a list of strings', object: 'a map of strings' };
  return members.map((m) => words[String(m.type)] ?? 'valid').join(' or ');
}
