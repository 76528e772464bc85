/** @type {import('next').NextConfig} */
const nextConfig = {
  // the Tollgate packages ship ESM and CJS builds; nothing to transpile. The app's own files import
  // each other as `./x.js` (TypeScript's Node16 style): let webpack find `x.ts` for them.
  webpack: (config) => {
    config.resolve.extensionAlias = { '.js': ['.ts', '.tsx', '.js'] }
    return config
  },
}

export default nextConfig
