// OIDC ID tokens as Cloud Tasks attaches them to deliveries (RS256, Google's issuer, a service account's email),
// signed by a key made here, and the certificates that verify them: `cloudTasksAuth({ certs: googleCerts })`.
import { createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';

function keyPair(): { privateKey: KeyObject; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, pem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** Stands in for Google's signing key; `googleCerts` serves its public half. */
export const GOOGLE = keyPair();
/** A key Google does not have. */
export const STRANGER = keyPair();
export const GOOGLE_KID = 'google-key-1';
export const googleCerts = async (): Promise<Record<string, string>> => ({ [GOOGLE_KID]: GOOGLE.pem });

/** A token for `audience` from `email`, valid for an hour unless `claims` say otherwise. */
export function idToken(audience: string, email: string, claims: Record<string, unknown> = {}, key: KeyObject = GOOGLE.privateKey, kid = GOOGLE_KID): string {
  const now = Math.floor(Date.now() / 1000);
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${enc({ alg: 'RS256', kid, typ: 'JWT' })}.${enc({ iss: 'https://accounts.google.com', aud: audience, email, email_verified: true, sub: '1234', iat: now, exp: now + 3600, ...claims })}`;
  return `${body}.${createSign('RSA-SHA256').update(body).sign(key).toString('base64url')}`;
}
