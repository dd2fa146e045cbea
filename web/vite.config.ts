import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

// In dev mode (`npm run dev`) the REST API is proxied to auth on 8081 so the client stays
// same-origin; edges are reached directly and must allow http://localhost:5173 as an origin.
const auth = process.env.NATTER_AUTH_URL ?? 'http://127.0.0.1:8081';

export default defineConfig({
  plugins: [react()],
  server: {
    port: 5173,
    proxy: { '/api': auth },
  },
  build: { target: 'es2020', sourcemap: false },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
});
