/**
 * The agent page: a few static files the gateway serves at http://<listen>/. Only files present
 * in static/ at start are served (no path from the URL ever reaches the file system).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Beside this module when run from source; from dist/ (the image) the files stay in tlib-api/page/static. */
export function staticDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [env.HUDDLE_PAGE_DIR, path.join(HERE, 'static'), path.resolve(HERE, '../../../tlib-api/page/static')];
  return candidates.find((dir): dir is string => dir !== undefined && existsSync(path.join(dir, 'index.html')));
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export type PageHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function pageHandler(dir: string | undefined = staticDir()): PageHandler {
  const files = new Map<string, { body: Buffer; type: string }>();
  if (dir) {
    for (const name of readdirSync(dir)) {
      const type = CONTENT_TYPES[path.extname(name)];
      if (type) files.set(`/${name}`, { body: readFileSync(path.join(dir, name)), type });
    }
  }
  const index = files.get('/index.html');
  if (index) files.set('/', index);
  return (req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://gateway').pathname;
    const file = req.method === 'GET' || req.method === 'HEAD' ? files.get(pathname) : undefined;
    if (!file) {
      res.writeHead(pathname === '/tlib' ? 426 : 404, { 'content-type': 'text/plain' });
      res.end(pathname === '/tlib' ? 'WebSocket upgrade required\n' : 'not found\n');
      return;
    }
    res.writeHead(200, {
      'content-type': file.type,
      'content-length': file.body.length,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'self'; connect-src 'self' ws: wss:",
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  };
}
