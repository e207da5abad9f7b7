import { z } from 'zod';

/** Cdnurl's routes: `GET` and `POST <URL_PATH>/:assetId`. */
export const URL_PATH = '/url/asset';

/** An asset's playable URL: what cdnurl answers (with the id); an asset without one is a 404. */
export const urlRecord = z.object({ url: z.string() });
export type PlayableUrl = z.infer<typeof urlRecord>;

/** Absolute http(s) URLs with a host, or CDN-relative paths as in the seed; nothing that could run script. */
const playableUrl = z
  .string()
  .trim()
  .min(1)
  .max(2048)
  .refine((u) => isHttpUrl(u) || /^[A-Za-z0-9_\-./]+$/.test(u), 'must be an http(s) URL or a relative path')
  .describe('an absolute http(s) URL with a host, or a CDN-relative path of letters, digits and _ - . /');

function isHttpUrl(candidate: string): boolean {
  if (!/^https?:\/\//i.test(candidate) || /[\s"'<>`]/.test(candidate)) return false;
  try {
    return new URL(candidate).hostname !== '';
  } catch {
    return false;
  }
}

/** What a write must send. */
export const urlWrite = z.object({ url: playableUrl }).strict();
