# tokentap image: built exactly as the README builds it (scripts/setup.sh, then the "default"
# CMake preset), then only the binary (debug info stripped) on debian:bookworm-slim with the
# libraries it links.
# The built-in price table (pricing/prices.json) is compiled into the binary; a copy is kept in
# /usr/share/tokentap for reference. Mount more price files and name them in pricing.files.
#   docker build -t tokentap:0.1.0 .
FROM debian:bookworm AS build
WORKDIR /src
COPY . .
RUN bash scripts/setup.sh \
 && cmake --preset default -DBUILD_TESTING=OFF -DTOKENTAP_WERROR=OFF \
 && cmake --build --preset default --target tokentap \
 && strip --strip-debug -o /tokentap build/default/proxy/tokentap

FROM debian:bookworm-slim
# One package per shared library of the binary (tests/k8s/test_image.py checks this list
# against ldd of a real build).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
      libuv1 libssl3 libyaml-cpp0.7 libprometheus-cpp-core1.0 libbrotli1 zlib1g libstdc++6 libgcc-s1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 tokentap \
 && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin tokentap
COPY --from=build /tokentap /usr/local/bin/tokentap
COPY pricing/prices.json /usr/share/tokentap/prices.json
USER 65532:65532
# 8080: the proxy (binds 127.0.0.1 unless --listen says otherwise: a sidecar serves its own pod);
# 9901: admin (/metrics, /healthz, /readyz).
EXPOSE 8080 9901
ENTRYPOINT ["/usr/local/bin/tokentap"]
