/**
 * Helpers of the k8s layer's tests (not used by the layer itself).
 */
import assert from 'node:assert/strict';
import type { KubeObject } from './objects.js';
import { ApiError } from './status.js';
import { validateObject } from './validation.js';

/**
 * The message of the ApiError validateObject throws for O; fails the test
 * when O is valid or the error is of another kind.
 */
export function invalidMessage(o: unknown): string {
  try {
    validateObject(o as KubeObject);
  } catch (err) {
    assert.ok(err instanceof ApiError);
    return err.message;
  }
  assert.fail('expected the object to be invalid');
}
