import type { Auth } from 'firebase-admin/auth';
import { ApiError } from './errors.js';

/** Who is calling: a Firebase Auth user; `admin` (a custom claim) sees and acts on every user's tasks and audio. */
export interface Caller {
  uid: string;
  admin: boolean;
}

/** Turns an ID token into the caller, or throws an `ApiError` ('unauthenticated'). */
export type Authenticate = (idToken: string) => Promise<Caller>;

/** Why firebase-admin rejected a token, in words a client developer can act on. */
const TOKEN_PROBLEMS: Record<string, string> = {
  'auth/id-token-expired': 'the ID token has expired: get a fresh one (getIdToken(true)) and retry',
  'auth/id-token-revoked': 'the ID token has been revoked: sign in again',
  'auth/user-disabled': 'the user account is disabled',
  'auth/user-not-found': 'the user of this ID token no longer exists',
  'auth/argument-error': 'the bearer token is not a Firebase ID token',
  'auth/invalid-id-token': 'the bearer token is not a valid Firebase ID token',
};

export interface FirebaseAuthenticatorOptions {
  /** The custom claim that makes a user an admin when it is `true`. @default 'admin' */
  adminClaim?: string;
  /**
   * Verified tokens remembered until they expire, so a client polling with the same token is verified once: the same
   * answer `verifyIdToken` would give, since it does not check revocation either. 0 turns it off. @default 10_000
   */
  cacheSize?: number;
}

/** Verifies Firebase Auth ID tokens with firebase-admin (the Auth emulator when `FIREBASE_AUTH_EMULATOR_HOST` is set). */
export function firebaseAuthenticator(auth: Auth, options: FirebaseAuthenticatorOptions = {}): Authenticate {
  const adminClaim = options.adminClaim ?? 'admin';
  const cacheSize = options.cacheSize ?? 10_000;
  if (!Number.isInteger(cacheSize) || cacheSize < 0) throw new TypeError(`cacheSize must be a whole number >= 0, got ${JSON.stringify(options.cacheSize)}`);
  // Insertion-ordered: when full, the oldest entry goes.
  const verified = new Map<string, { caller: Caller; expiresAtMs: number }>();
  return async (idToken) => {
    const hit = verified.get(idToken);
    if (hit && hit.expiresAtMs > Date.now()) return hit.caller;
    if (hit) verified.delete(idToken);
    try {
      const decoded = await auth.verifyIdToken(idToken);
      const caller = { uid: decoded.uid, admin: decoded[adminClaim] === true };
      if (cacheSize > 0) {
        if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!);
        verified.set(idToken, { caller, expiresAtMs: decoded.exp * 1000 });
      }
      return caller;
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      if (code.startsWith('auth/')) throw new ApiError('unauthenticated', TOKEN_PROBLEMS[code] ?? `the ID token was rejected (${code})`);
      throw error;
    }
  };
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(header: string | undefined): string {
  if (!header) throw new ApiError('unauthenticated', 'sign in first: send a Firebase Auth ID token as "Authorization: Bearer <token>"');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new ApiError('unauthenticated', 'the Authorization header must be "Bearer <Firebase ID token>"');
  return match[1]!;
}
