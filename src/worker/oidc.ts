import type { OAuth2Client } from 'google-auth-library';
import { sharedIdentity } from '../core/errors.js';

/** Google's issuers of OIDC ID tokens, as Cloud Tasks' tokens name them. */
export const GOOGLE_ISSUERS: readonly string[] = ['https://accounts.google.com', 'accounts.google.com'];

export interface CloudTasksAuthOptions {
  /**
   * What the token must be for: the URL Cloud Tasks delivers to (its default audience, and what `cloudTasks({ uri })`
   * sends), or the audience the queue's `oidcToken` names. Several are allowed, e.g. the Cloud Run URL and a custom
   * domain.
   */
  audience: string | readonly string[];
  /** The service accounts whose tokens are accepted: the one the enqueuer names in `oidcToken` (its own, by default). */
  serviceAccounts: readonly string[];
  /** @default GOOGLE_ISSUERS */
  issuers?: readonly string[];
  /**
   * The PEM certificates tokens are checked against, by key id. @default Google's, fetched and cached by
   * google-auth-library as their Cache-Control allows. Tests pass their own.
   */
  certs?: () => Promise<Record<string, string>>;
}

/** A delivery without a token Cloud Tasks signed for this worker (401), or signed for a caller it does not accept (403). */
export class DeliveryAuthError extends Error {
  override name = 'DeliveryAuthError';
  constructor(
    message: string,
    readonly status: 401 | 403,
  ) {
    super(message);
  }
}
sharedIdentity(DeliveryAuthError, 'DeliveryAuthError');

/** Checks a delivery's `Authorization` header; resolves with the caller's service account, or throws `DeliveryAuthError`. */
export type DeliveryAuth = (authorization: string | undefined) => Promise<string>;

/**
 * Verifies the OIDC token Cloud Tasks attaches to each HTTP delivery (`oidcToken` on the task, as firebase-admin's
 * `enqueue` sets it): Google's signature, the audience, the issuer, the expiry (google-auth-library's checks, with its
 * 5-minute clock skew) and that the email is one of `serviceAccounts` and verified. On Cloud Run, requiring IAM
 * authentication on the service checks the same token before it reaches the process; this check keeps the worker safe
 * where that is left off, and names the refused caller in the log.
 */
export function cloudTasksAuth(options: CloudTasksAuthOptions): DeliveryAuth {
  const audience = typeof options?.audience === 'string' ? [options.audience] : options?.audience;
  if (!Array.isArray(audience) || audience.length === 0 || !audience.every((a) => typeof a === 'string' && a.length > 0)) {
    throw new TypeError(`audience must be a non-empty string or list of strings (the worker's URL), got ${JSON.stringify(options?.audience)}`);
  }
  const accounts = options.serviceAccounts;
  if (!Array.isArray(accounts) || accounts.length === 0 || !accounts.every((a) => typeof a === 'string' && a.includes('@'))) {
    throw new TypeError(`serviceAccounts must be a non-empty list of service account emails, got ${JSON.stringify(accounts)}`);
  }
  const issuers = [...(options.issuers ?? GOOGLE_ISSUERS)];
  // Loaded on the first delivery, so importing this module (the CLI does, for its errors) costs nothing.
  let loading: Promise<OAuth2Client> | undefined;
  const oauth = () => (loading ??= import('google-auth-library').then(({ OAuth2Client }) => new OAuth2Client()));
  const certs = options.certs ?? (async () => (await (await oauth()).getFederatedSignonCertsAsync()).certs);
  return async (authorization) => {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) throw new DeliveryAuthError('no bearer token: deliveries must come from Cloud Tasks with an OIDC token', 401);
    // Outside the try: certificates that cannot be fetched are our outage (500, delivered again), not a bad token.
    const [client, keys] = await Promise.all([oauth(), certs()]);
    let payload;
    try {
      payload = (await client.verifySignedJwtWithCertsAsync(token, keys, [...audience], issuers)).getPayload();
    } catch (error) {
      throw new DeliveryAuthError(`the delivery's token was refused: ${error instanceof Error ? error.message : String(error)}`, 401);
    }
    const email = payload?.email;
    if (!email || payload?.email_verified !== true || !accounts.includes(email)) {
      throw new DeliveryAuthError(`deliveries are accepted from ${accounts.join(', ')} only, not from ${JSON.stringify(email ?? null)}`, 403);
    }
    return email;
  };
}
