import type { Auth } from 'firebase-admin/auth';
import { describe, expect, it } from 'vitest';
import { bearerToken, firebaseAuthenticator } from './auth.js';
import { ApiError } from './errors.js';

/** A stand-in for firebase-admin's Auth: tokens are "uid:expSeconds[:admin]"; counts verifications. */
function fakeAuth() {
  const calls: string[] = [];
  const auth = {
    async verifyIdToken(token: string) {
      calls.push(token);
      const [uid, exp, admin] = token.split(':');
      if (!uid || !exp) throw Object.assign(new Error('bad'), { code: 'auth/argument-error' });
      if (Number(exp) * 1000 < Date.now()) throw Object.assign(new Error('expired'), { code: 'auth/id-token-expired' });
      return { uid, exp: Number(exp), ...(admin ? { admin: true } : {}) };
    },
  } as unknown as Auth;
  return { auth, calls };
}

describe('firebaseAuthenticator', () => {
  it('verifies a token once and answers from memory until it expires', async () => {
    const { auth, calls } = fakeAuth();
    const authenticate = firebaseAuthenticator(auth);
    const later = Math.floor(Date.now() / 1000) + 3600;
    for (let i = 0; i < 5; i++) expect(await authenticate(`alice:${later}`)).toEqual({ uid: 'alice', admin: false });
    expect(calls).toHaveLength(1);
    expect(await authenticate(`root:${later}:admin`)).toEqual({ uid: 'root', admin: true });
    const soon = Math.floor(Date.now() / 1000) + 1;
    await authenticate(`bob:${soon}`);
    await new Promise((r) => setTimeout(r, 1100));
    // Expired: verified again, and refused the way firebase-admin refuses it.
    const error = await authenticate(`bob:${soon}`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).message).toContain('has expired');
    expect(calls.filter((c) => c.startsWith('bob'))).toHaveLength(2);
  });

  it('keeps at most cacheSize tokens, and none with cacheSize 0', async () => {
    const later = Math.floor(Date.now() / 1000) + 3600;
    const small = fakeAuth();
    const authenticate = firebaseAuthenticator(small.auth, { cacheSize: 2 });
    for (const u of ['a', 'b', 'c', 'a']) await authenticate(`${u}:${later}`);
    expect(small.calls).toEqual([`a:${later}`, `b:${later}`, `c:${later}`, `a:${later}`]);
    const none = fakeAuth();
    const uncached = firebaseAuthenticator(none.auth, { cacheSize: 0 });
    await uncached(`a:${later}`);
    await uncached(`a:${later}`);
    expect(none.calls).toHaveLength(2);
    expect(() => firebaseAuthenticator(none.auth, { cacheSize: -1 })).toThrow('cacheSize must be a whole number >= 0, got -1');
  });

  it('reads the bearer token or says what is wrong', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('bearer  abc ')).toBe('abc');
    expect(() => bearerToken(undefined)).toThrow('sign in first');
    expect(() => bearerToken('Basic xyz')).toThrow('must be "Bearer <Firebase ID token>"');
  });
});
