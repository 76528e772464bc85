/** @type {import('next').NextConfig} */
const nextConfig = {
  // the Tollgate packages ship ESM and CJS builds; nothing to transpile
}

export default nextConfig
