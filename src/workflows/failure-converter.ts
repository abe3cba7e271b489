/**
 * Failure messages and stack traces travel as an encoded payload (`encodedAttributes`) instead of
 * plain fields, so the payload codec encrypts them like inputs and results: a failure can name a
 * host or quote a reason. Loaded by path (`failureConverterPath`) into the workflow sandbox and
 * the worker's and client's data converters alike.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
