/** An error with an HTTP status and a stable code, answered as `{"error":{code,message}}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }

  /** Every offending field, when there are several. */
  fields: string[] | undefined;

  /** Attaches the list of offending fields. */
  withFields(fields: string[]): this {
    this.fields = fields;
    return this;
  }
}
