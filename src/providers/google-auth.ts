// Google Cloud credentials for the Google providers (Speech-to-Text, Gemini) when the caller passes no token source.
// Its own module: firebase-admin is imported lazily, at the first call, and only the provider selectors depend on it.
/** An access token from firebase-admin's application-default credentials (they cache and refresh it). */
export async function applicationDefaultAccessToken(): Promise<string> {
  const { applicationDefault } = await import('firebase-admin/app');
  return (await applicationDefault().getAccessToken()).access_token;
}
