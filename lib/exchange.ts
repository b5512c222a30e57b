/**
 * An exchange sent in the session with retries: retryable failures are repeated (lib/retry),
 * a failure of a request that must not be repeated becomes DELIVERY_UNCERTAIN, and an answer
 * not accepted becomes its typed error (lib/answers).
 */
import { assertOk } from './answers';
import { NetworkError, type M2MError } from './errors';
import type { ClientSettings, Counters } from './options';
import { withRetry, type RetryHooks } from './retry';
import type { Session, Tally } from './session';
import { NOT_SENT_CODES, errorCodes, type Answer, type Exchange } from './transport';

/** A failure after which the server may or may not have acted on a request that must not be repeated. */
function uncertain(err: unknown): unknown {
  if (
    !(err instanceof NetworkError) ||
    !err.retryable ||
    errorCodes(err.cause).some((c) => NOT_SENT_CODES.has(c)) ||
    NOT_SENT_CODES.has(err.code)
  )
    return err;
  return new NetworkError(`${err.reason} SCB may or may not have received the file.`, {
    code: 'DELIVERY_UNCERTAIN',
    retryable: false,
    hint: 'Look it up in the history (scb-m2m-history without an uploadId lists every upload) before sending it again, so it is not delivered twice.',
    cause: err,
  });
}

export class Exchanges {
  constructor(
    private readonly session: Session,
    private readonly settings: ClientSettings,
    private readonly counters: Counters,
  ) {}

  /** Counts and logs each retry of an operation. */
  retryHooks(signal: AbortSignal, tally: Tally): RetryHooks {
    return {
      signal,
      onRetry: (err: M2MError, retry: number, delayMs: number) => {
        tally.retries++;
        this.counters.retries++;
        this.settings.log(
          'warn',
          `${err.message} Retry ${retry} of ${this.settings.retry.maxRetries} in ${delayMs} ms.`,
        );
      },
    };
  }

  /** Sends one exchange with a live session, retrying retryable failures; answers that are not accepted become errors. */
  run(x: Exchange, tally: Tally): Promise<Answer> {
    return withRetry(
      async () => {
        const answer = await this.session.send(x, tally).catch((err: unknown) => {
          throw x.once ? uncertain(err) : err;
        });
        if (x.accept?.(answer)) return answer;
        assertOk(answer, x, this.settings.certificate.info);
        return answer;
      },
      this.settings.retry,
      this.retryHooks(x.signal, tally),
    );
  }
}
