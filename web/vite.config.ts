// The build the gateway serves at `/` (web/dist). `npm run dev` serves the same app with hot
// reload and forwards API calls to a running gateway (VOICEGW_URL, default http://127.0.0.1:8080).
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const gateway = process.env.VOICEGW_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  // livekit-client is most of the bundle; one chunk of ~850 kB loads once and is cached for good.
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 1200 },
  server: {
    host: '127.0.0.1',
    proxy: { '/v1': gateway, '/config.json': gateway },
  },
});
