// Browser and Node: one signed-in Firebase JS SDK client from the config a fireflow server publishes at
// `/config.json` — the dashboard and the CLI connect the same way, so both see the same user's tasks.
import { deleteApp, initializeApp, type FirebaseApp } from 'firebase/app';
import {
  connectAuthEmulator,
  createUserWithEmailAndPassword,
  getAuth,
  signInWithEmailAndPassword,
  type Auth,
  type User,
} from 'firebase/auth';
import { connectFirestoreEmulator, getFirestore, type Firestore } from 'firebase/firestore';
import { sharedIdentity } from '../core/errors.js';

/** What `GET /config.json` of a fireflow server answers. */
export interface ClientConfig {
  projectId: string;
  apiKey: string;
  /** Set when the server runs on the local emulators: where the SDK must connect instead of Google's servers. */
  emulators?: { auth: string; firestore: { host: string; port: number } };
  /**
   * Emulators only: the local user the CLI and the dashboard sign in as (created on first use), so that what one
   * starts the other shows. Never set against a real project.
   */
  localUser?: { email: string; password: string };
}

export interface Connected {
  app: FirebaseApp;
  auth: Auth;
  db: Firestore;
  user: User;
  /** A current ID token for the API (refreshed by the SDK when it is about to expire). */
  idToken(): Promise<string>;
  close(): Promise<void>;
}

/** Signing in failed: wrong credentials, no credentials for a real project, or Auth unreachable. */
export class SignInError extends Error {
  override name = 'SignInError';
}

/** Fetches `/config.json` from a fireflow server. */
export async function fetchClientConfig(baseUrl: string): Promise<ClientConfig> {
  const url = `${baseUrl.replace(/\/+$/, '')}/config.json`;
  let res: Response;
  try {
    res = await fetch(url);
  } catch (error) {
    throw new SignInError(`no fireflow server answers at ${baseUrl} (${error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error)}); start one with \`fireflow serve\``);
  }
  if (!res.ok) throw new SignInError(`${url} answered ${res.status}: is ${baseUrl} a fireflow server?`);
  const config = (await res.json()) as ClientConfig;
  if (typeof config?.projectId !== 'string' || typeof config.apiKey !== 'string') throw new SignInError(`${url} is not a fireflow client config`);
  return config;
}

const AUTH_CODES_FOR_NO_SUCH_USER = new Set(['auth/user-not-found', 'auth/invalid-credential', 'auth/invalid-login-credentials']);

/**
 * Initialises a named Firebase app from `config`, connects it to the emulators when the config names them, and signs
 * in with `credentials` (or the config's local user; created on the emulators if it does not exist yet).
 */
export async function connectClient(config: ClientConfig, options: { name?: string; credentials?: { email: string; password: string } } = {}): Promise<Connected> {
  const app = initializeApp({ projectId: config.projectId, apiKey: config.apiKey, authDomain: `${config.projectId}.firebaseapp.com` }, options.name ?? `fireflow-${Math.random().toString(36).slice(2)}`);
  const auth = getAuth(app);
  const db = getFirestore(app);
  if (config.emulators) {
    connectAuthEmulator(auth, config.emulators.auth, { disableWarnings: true });
    connectFirestoreEmulator(db, config.emulators.firestore.host, config.emulators.firestore.port);
  }
  const credentials = options.credentials ?? config.localUser;
  try {
    if (!credentials) throw new SignInError('sign-in needs an email and password (FIREFLOW_EMAIL, FIREFLOW_PASSWORD) for this project');
    let user: User;
    try {
      user = (await signInWithEmailAndPassword(auth, credentials.email, credentials.password)).user;
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      if (!config.emulators || !AUTH_CODES_FOR_NO_SUCH_USER.has(code)) throw error;
      // First use on these emulators; another process may be creating the same user at this moment.
      try {
        user = (await createUserWithEmailAndPassword(auth, credentials.email, credentials.password)).user;
      } catch (created) {
        if ((created as { code?: string }).code !== 'auth/email-already-in-use') throw created;
        user = (await signInWithEmailAndPassword(auth, credentials.email, credentials.password)).user;
      }
    }
    return { app, auth, db, user, idToken: () => user.getIdToken(), close: () => deleteApp(app) };
  } catch (error) {
    await deleteApp(app);
    if (error instanceof SignInError) throw error;
    const code = (error as { code?: string }).code;
    throw new SignInError(`could not sign in as ${credentials?.email}: ${code ?? (error instanceof Error ? error.message : String(error))}`);
  }
}

sharedIdentity(SignInError, 'SignInError');
