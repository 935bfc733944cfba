import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, errors as natsErrors, type NatsConnection } from '@nats-io/transport-node';
import { Type } from '@sinclair/typebox';
import { startTestNats, type TestNats } from '../../test/support/infra.js';
import { RpcBadReply, RpcBadRequest, RpcError, RpcHandlerFailed, RpcNoResponders, RpcRequestFailed, RpcTimeout, call, notify, serve, type Served } from './rpc.js';

const Sum = {
  request: Type.Object({ a: Type.Integer(), b: Type.Integer(), delayMs: Type.Optional(Type.Integer()) }),
  reply: Type.Object({ sum: Type.Integer() }),
};
/** The same subject, as a client that expects another reply. */
const Product = { request: Sum.request, reply: Type.Object({ product: Type.Integer() }) };

let nats: TestNats;
let nc: NatsConnection;
const served: Served[] = [];
let subjectSeq = 0;
const subject = () => `rpc.test.${++subjectSeq}`;

function serveSum(on: string, onBad: (e: RpcBadRequest) => void = () => undefined): Served {
  const s = serve(nc, on, { contract: Sum, badRequest: (e) => (onBad(e), { sum: -1 }) }, async ({ a, b, delayMs }) => {
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    return { sum: a + b };
  });
  served.push(s);
  return s;
}

/** The error `promise` rejects with. */
async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  nats = await startTestNats();
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  for (const s of served) await s.drain();
  await nc?.close();
  await nats?.stop();
});

describe('call and serve', () => {
  it('answers a request checked against the contract', async () => {
    const on = subject();
    serveSum(on);
    await nc.flush();
    expect(await call(nc, on, Sum, { a: 2, b: 3 }, { timeoutMs: 2000 })).toEqual({ sum: 5 });
  });

  it('notify: the server handles a request that expects no reply', async () => {
    const on = subject();
    const seen: number[] = [];
    served.push(serve(nc, on, { contract: Sum, badRequest: () => ({ sum: -1 }) }, ({ a }) => (seen.push(a), { sum: a })));
    await nc.flush();
    notify(nc, on, Sum, { a: 7, b: 0 });
    await nc.flush();
    await expect.poll(() => seen).toEqual([7]);
  });

  it('drain: takes no more requests and resolves once those taken are answered', async () => {
    const on = subject();
    const s = serveSum(on);
    await nc.flush();
    const slow = call(nc, on, Sum, { a: 1, b: 1, delayMs: 300 }, { timeoutMs: 2000 });
    await new Promise((r) => setTimeout(r, 50));
    await s.drain();
    expect(await slow).toEqual({ sum: 2 });
    expect(await failure(call(nc, on, Sum, { a: 1, b: 1 }, { timeoutMs: 2000 }))).toBeInstanceOf(RpcNoResponders);
  });
});

describe('one error class per failure', () => {
  it('RpcNoResponders: nobody serves the subject', async () => {
    const err = await failure(call(nc, subject(), Sum, { a: 1, b: 2 }, { timeoutMs: 2000 }));
    expect(err).toBeInstanceOf(RpcNoResponders);
    expect(err).toBeInstanceOf(RpcError);
    expect(err.name).toBe('RpcNoResponders');
    expect(err.cause).toBeInstanceOf(natsErrors.RequestError);
  });

  it('RpcTimeout: the server takes longer than the caller waits', async () => {
    const on = subject();
    serveSum(on);
    await nc.flush();
    const err = await failure(call(nc, on, Sum, { a: 1, b: 2, delayMs: 400 }, { timeoutMs: 100 }));
    expect(err).toBeInstanceOf(RpcTimeout);
    expect(err.name).toBe('RpcTimeout');
    expect((err as RpcTimeout).timeoutMs).toBe(100);
    expect(err.cause).toBeInstanceOf(natsErrors.TimeoutError);
  });

  it('RpcRequestFailed: the request cannot go out (connection closed)', async () => {
    const closed = await connect({ servers: nats.url });
    await closed.close();
    const err = await failure(call(closed, subject(), Sum, { a: 1, b: 2 }, { timeoutMs: 2000 }));
    expect(err).toBeInstanceOf(RpcRequestFailed);
    expect(err.name).toBe('RpcRequestFailed');
    expect(err.cause).toBeInstanceOf(natsErrors.ClosedConnectionError);
  });

  it('RpcBadReply: the reply breaks the contract, or is not JSON', async () => {
    const on = subject();
    serveSum(on);
    await nc.flush();
    const wrong = await failure(call(nc, on, Product, { a: 1, b: 2 }, { timeoutMs: 2000 }));
    expect(wrong).toBeInstanceOf(RpcBadReply);
    expect(wrong.name).toBe('RpcBadReply');
    expect(wrong).toMatchObject({ body: { sum: 3 }, problem: expect.stringContaining('product') as unknown });

    // A foreign server, outside the rpc layer, that answers text.
    const raw = subject();
    const sub = nc.subscribe(raw, {
      callback: (_, msg) => {
        msg.respond('plain text');
      },
    });
    await nc.flush();
    try {
      const notJson = await failure(call(nc, raw, Sum, { a: 1, b: 2 }, { timeoutMs: 2000 }));
      expect(notJson).toBeInstanceOf(RpcBadReply);
      expect(notJson).toMatchObject({ body: undefined, problem: expect.stringContaining('not JSON') as unknown });
      expect(notJson.cause).toBeInstanceOf(Error);
    } finally {
      sub.unsubscribe();
    }
  });

  it('RpcHandlerFailed: the handler threw; the server reports it and the caller learns why at once', async () => {
    const on = subject();
    const reported: Error[] = [];
    served.push(
      serve(nc, on, { contract: Sum, badRequest: () => ({ sum: -1 }), onError: (e) => reported.push(e) }, () => {
        throw new Error('model exploded');
      }),
    );
    await nc.flush();
    const err = await failure(call(nc, on, Sum, { a: 1, b: 2 }, { timeoutMs: 2000 }));
    expect(err).toBeInstanceOf(RpcHandlerFailed);
    expect(err.name).toBe('RpcHandlerFailed');
    expect((err as RpcHandlerFailed).reason).toBe('model exploded');
    expect(reported.map((e) => e.message)).toEqual(['model exploded']);
  });

  it('RpcBadRequest: the server answers a request that breaks the contract in its own words', async () => {
    const on = subject();
    const bad: RpcBadRequest[] = [];
    serveSum(on, (e) => bad.push(e));
    await nc.flush();
    expect(await call(nc, on, Sum, { a: 1, b: 'two' } as never, { timeoutMs: 2000 })).toEqual({ sum: -1 });
    nc.publish(on, '{not json');
    await expect.poll(() => bad.length).toBe(2);
    const [schema, json] = bad;
    expect(schema).toBeInstanceOf(RpcBadRequest);
    expect(schema!.name).toBe('RpcBadRequest');
    expect(schema).toMatchObject({ subject: on, body: { a: 1, b: 'two' }, problem: 'b: must be integer', schemaError: { instancePath: '/b' } });
    expect(json).toMatchObject({ body: undefined, problem: expect.stringContaining('not JSON') as unknown });
    expect(json!.cause).toBeInstanceOf(Error);
  });
});
