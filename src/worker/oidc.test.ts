import { describe, expect, it } from 'vitest';
import { GOOGLE, GOOGLE_KID, STRANGER, googleCerts, idToken } from '../../test/support/id-token.js';
import { cloudTasksAuth, DeliveryAuthError } from './oidc.js';

const AUDIENCE = 'https://fireflow-worker-abc123-uc.a.run.app/';
const ACCOUNT = 'demo-fireflow@appspot.gserviceaccount.com';

const token = (claims: Record<string, unknown> = {}, key = GOOGLE.privateKey, kid = GOOGLE_KID) => idToken(AUDIENCE, ACCOUNT, claims, key, kid);

const auth = cloudTasksAuth({ audience: AUDIENCE, serviceAccounts: [ACCOUNT], certs: googleCerts });

async function refusal(header: string | undefined): Promise<DeliveryAuthError> {
  const error = await auth(header).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DeliveryAuthError);
  return error as DeliveryAuthError;
}

describe('cloudTasksAuth', () => {
  it("accepts a token Google signed for this worker's URL and an accepted service account", async () => {
    expect(await auth(`Bearer ${token({})}`)).toBe(ACCOUNT);
    expect(await auth(`bearer ${token({ iss: 'accounts.google.com' })}`)).toBe(ACCOUNT);
  });

  it('refuses a delivery without a token, unsigned, signed by another key, expired, for another audience or issuer: 401', async () => {
    expect((await refusal(undefined)).status).toBe(401);
    expect((await refusal('Basic dXNlcjpwYXNz')).status).toBe(401);
    const [h, p] = token({}).split('.');
    expect((await refusal(`Bearer ${h}.${p}.`)).status).toBe(401);
    expect((await refusal(`Bearer ${h}.${p}`)).status).toBe(401);
    const alg = Buffer.from(JSON.stringify({ alg: 'none', kid: 'google-key-1' })).toString('base64url');
    expect((await refusal(`Bearer ${alg}.${p}.`)).status).toBe(401);
    expect((await refusal(`Bearer ${token({}, STRANGER.privateKey)}`)).message).toMatch(/refused/);
    expect((await refusal(`Bearer ${token({}, STRANGER.privateKey, 'unknown-kid')}`)).status).toBe(401);
    const hourAgo = Math.floor(Date.now() / 1000) - 3600;
    expect((await refusal(`Bearer ${token({ iat: hourAgo - 3600, exp: hourAgo })}`)).message).toMatch(/refused/);
    expect((await refusal(`Bearer ${token({ aud: 'https://attacker.example/' })}`)).status).toBe(401);
    expect((await refusal(`Bearer ${token({ iss: 'https://evil.example' })}`)).status).toBe(401);
  });

  it('refuses a valid token of another caller, or with an unverified email: 403 naming it', async () => {
    const other = await refusal(`Bearer ${token({ email: 'someone@other-project.iam.gserviceaccount.com' })}`);
    expect(other.status).toBe(403);
    expect(other.message).toContain('someone@other-project.iam.gserviceaccount.com');
    expect((await refusal(`Bearer ${token({ email_verified: false })}`)).status).toBe(403);
    expect((await refusal(`Bearer ${token({ email: undefined })}`)).status).toBe(403);
  });

  it('rejects bad options with a TypeError quoting them', () => {
    expect(() => cloudTasksAuth({ audience: '', serviceAccounts: [ACCOUNT] })).toThrow(/audience must be .* got ""/);
    expect(() => cloudTasksAuth({ audience: AUDIENCE, serviceAccounts: ['not-an-email'] })).toThrow(/serviceAccounts must be .* got \["not-an-email"\]/);
  });
});
