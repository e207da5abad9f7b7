import { JetStreamApiError } from '@nats-io/jetstream';
import { NoRespondersError, RequestError, TimeoutError, createInbox, type Msg, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';

/** What JetStream answered a publish that it stored, or knew already (`duplicate`). */
export interface PublishAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

interface Waiting {
  subject: string;
  resolve(ack: PublishAck): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

type ApiErrorBody = ConstructorParameters<typeof JetStreamApiError>[0];

/**
 * JetStream publishes on one connection whose acks all come to one
 * subscription (`<inbox>.<n>`), as nats.js's own request mux does, without
 * what its `js.publish` builds for every publish: a request object, a timer
 * object, and an Error ("cancelled") made and thrown away after each ack, with
 * its stack trace. That was 45-55 % of the CPU a publish cost the publishing
 * process. The failures read as nats.js reports them, so callers tell them
 * apart the same way: no responders (no stream takes the subject) is a
 * RequestError caused by NoRespondersError, a JetStream refusal a
 * JetStreamApiError, a missing ack a TimeoutError.
 */
export class JetStreamAcks {
  private readonly inbox: string;
  private readonly waiting = new Map<string, Waiting>();
  private next = 0;

  /** `inboxPrefix`: the connection's own (an identity may read only its inbox). */
  constructor(
    private readonly nc: NatsConnection,
    inboxPrefix?: string,
  ) {
    this.inbox = createInbox(inboxPrefix);
    const subscription = nc.subscribe(`${this.inbox}.*`, {
      callback: (err, msg) => (err ? this.failAll(err) : this.settle(msg)),
    });
    // A closed connection or subscription answers nothing more: fail what waits now, not at each timeout.
    void subscription.closed.then(
      () => this.failAll(new RequestError('connection closed')),
      (err: unknown) => this.failAll(err instanceof Error ? err : new RequestError(String(err))),
    );
  }

  /** Resolves with JetStream's ack of `data` on `subject`, stored once per `msgId` within the stream's duplicate window. */
  publish(subject: string, data: string, options: { msgId: string; headers: MsgHdrs; timeoutMs: number }): Promise<PublishAck> {
    options.headers.set('Nats-Msg-Id', options.msgId);
    const token = String(++this.next);
    return new Promise<PublishAck>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(token);
        reject(new TimeoutError());
      }, options.timeoutMs);
      this.waiting.set(token, { subject, resolve, reject, timer });
      try {
        this.nc.publish(subject, data, { reply: `${this.inbox}.${token}`, headers: options.headers });
      } catch (err) {
        // A closed or draining connection refuses at once.
        this.take(token);
        reject(err instanceof Error ? err : new RequestError(String(err)));
      }
    });
  }

  private settle(msg: Msg): void {
    const waiting = this.take(msg.subject.slice(this.inbox.length + 1));
    if (!waiting) return; // an ack after its publish timed out: the caller has moved on
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      waiting.reject(new RequestError(`no responders: '${waiting.subject}'`, { cause: new NoRespondersError(waiting.subject) }));
      return;
    }
    try {
      waiting.resolve(readAck(msg));
    } catch (err) {
      waiting.reject(err instanceof Error ? err : new RequestError(String(err)));
    }
  }

  private take(token: string): Waiting | undefined {
    const waiting = this.waiting.get(token);
    if (!waiting) return undefined;
    this.waiting.delete(token);
    clearTimeout(waiting.timer);
    return waiting;
  }

  private failAll(err: Error): void {
    for (const token of [...this.waiting.keys()]) this.take(token)?.reject(err);
  }
}

function readAck(msg: Msg): PublishAck {
  const answer = msg.json<{ stream?: unknown; seq?: unknown; duplicate?: unknown; error?: ApiErrorBody }>();
  if (answer.error) throw new JetStreamApiError(answer.error);
  if (typeof answer.stream !== 'string' || answer.stream === '' || typeof answer.seq !== 'number') {
    throw new RequestError(`not a JetStream ack: ${msg.string().slice(0, 200)}`);
  }
  return { stream: answer.stream, seq: answer.seq, duplicate: answer.duplicate === true };
}
