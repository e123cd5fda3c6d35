/** createModuleDispatcher with real ESM fixture modules. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createModuleDispatcher } from '../../../src/adapters/moduleDispatcher.js';
import { E_ADAPTER_INVALID } from '../../../src/errors.js';
import { dispatchRequest } from './helpers.js';

const fixtures = join(import.meta.dirname, 'fixtures');

describe('createModuleDispatcher', () => {
  it('uses a `dispatcher` export with a dispatch() method, keeping `this` and the signal', async () => {
    const dispatcher = createModuleDispatcher('objectDispatcher.mjs', { cwd: fixtures });
    const outcome = await dispatcher.dispatch(dispatchRequest({ nodeId: 'plan', signal: new AbortController().signal }));
    expect(outcome).toEqual({ status: 'success', output: { via: 'object', nodeId: 'plan', hasSignal: true } });
  });

  it('uses a default-exported function, from an absolute path', async () => {
    const dispatcher = createModuleDispatcher(join(fixtures, 'functionDispatcher.mjs'));
    await dispatcher.load();
    expect(await dispatcher.dispatch(dispatchRequest({ iteration: 3 }))).toEqual({ status: 'success', output: { via: 'function', iteration: 3 } });
    expect(await dispatcher.dispatch(dispatchRequest({ nodeId: 'fails' }))).toEqual({ status: 'failure', error: 'no luck for fails' });
  });

  it('turns an answer outside the protocol into a failure naming the module', async () => {
    const dispatcher = createModuleDispatcher('functionDispatcher.mjs', { cwd: fixtures });
    expect(await dispatcher.dispatch(dispatchRequest({ nodeId: 'bad' }))).toEqual({
      status: 'failure',
      error: `agent module 'functionDispatcher.mjs' gave an invalid answer: expected "status" to be "success" or "failure", found string "done"`,
    });
  });

  it('lets a throw from the module propagate (the runtime records it as a node failure)', async () => {
    const dispatcher = createModuleDispatcher('functionDispatcher.mjs', { cwd: fixtures });
    await expect(dispatcher.dispatch(dispatchRequest({ nodeId: 'throws' }))).rejects.toThrow('module exploded');
  });

  it('refuses a module file that does not exist when created', () => {
    expect(() => createModuleDispatcher('nope.mjs', { cwd: fixtures })).toThrow(
      expect.objectContaining({ code: E_ADAPTER_INVALID, message: `agent module 'nope.mjs' does not exist (resolved to '${join(fixtures, 'nope.mjs')}')` }),
    );
  });

  it('rejects with E_ADAPTER_INVALID when the module exports no dispatcher, listing its exports', async () => {
    const dispatcher = createModuleDispatcher('noDispatcher.mjs', { cwd: fixtures });
    const expected = expect.objectContaining({ code: E_ADAPTER_INVALID, message: expect.stringContaining("found exports 'dispatcher', 'helper'") });
    await expect(dispatcher.load()).rejects.toEqual(expected);
    await expect(dispatcher.dispatch(dispatchRequest())).rejects.toEqual(expected);
  });

  it('rejects with E_ADAPTER_INVALID when the module throws while importing', async () => {
    const dispatcher = createModuleDispatcher('brokenModule.mjs', { cwd: fixtures });
    await expect(dispatcher.load()).rejects.toEqual(
      expect.objectContaining({ code: E_ADAPTER_INVALID, message: "agent module 'brokenModule.mjs' could not be imported: cannot initialise the agent" }),
    );
  });
});
