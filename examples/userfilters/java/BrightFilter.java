// Example user filter in Java, JDK only: the line protocol (docs/userfilter.md, version 1)
// without the Python SDK. Passes ZTF alerts whose candidate.magpsf is below mag_limit
// (parameter, default 18.0) with an annotation; drops the others.
//
// Frames: 4-byte big-endian length, then that many bytes of UTF-8 JSON. The runner sends
// "start", this answers "hello", then one "result" per "alert", in order.
//
// Build: javac -d OUT BrightFilter.java; run: java -cp OUT BrightFilter

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public final class BrightFilter {
    public static void main(String[] args) throws IOException {
        DataInputStream in = new DataInputStream(new BufferedInputStream(System.in, 1 << 16));
        DataOutputStream out = new DataOutputStream(new BufferedOutputStream(System.out, 1 << 16));
        double limit = 18.0;
        while (true) {
            Map<String, Object> message;
            try {
                message = readFrame(in);
            } catch (EOFException end) {
                return;
            }
            Object type = message.get("type");
            if ("start".equals(type)) {
                Object params = message.get("params");
                if (params instanceof Map && ((Map<?, ?>) params).get("mag_limit") instanceof Double) {
                    limit = (Double) ((Map<?, ?>) params).get("mag_limit");
                }
                writeFrame(out, "{\"type\":\"hello\",\"protocol\":1,\"input\":\"json\"}");
            } else if ("stop".equals(type)) {
                return;
            } else if ("alert".equals(type)) {
                long id = ((Double) message.get("id")).longValue();
                Object alert = message.get("alert");
                Object magpsf = null;
                if (alert instanceof Map) {
                    Object candidate = ((Map<?, ?>) alert).get("candidate");
                    if (candidate instanceof Map) {
                        magpsf = ((Map<?, ?>) candidate).get("magpsf");
                    }
                }
                String answer;
                if (magpsf instanceof Double && (Double) magpsf < limit) {
                    answer = "{\"type\":\"result\",\"id\":" + id + ",\"action\":\"pass\","
                        + "\"annotations\":{\"magpsf\":" + magpsf + ",\"by\":\"java\"}}";
                } else {
                    answer = "{\"type\":\"result\",\"id\":" + id + ",\"action\":\"drop\"}";
                }
                writeFrame(out, answer);
            }
        }
    }

    static Map<String, Object> readFrame(DataInputStream in) throws IOException {
        int length = in.readInt();
        if (length < 0 || length > (16 << 20)) {
            throw new IOException("bad frame length " + length);
        }
        byte[] body = new byte[length];
        in.readFully(body);
        Object value = new Json(new String(body, StandardCharsets.UTF_8)).value();
        if (!(value instanceof Map)) {
            throw new IOException("frame is not a JSON object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> map = (Map<String, Object>) value;
        return map;
    }

    static void writeFrame(DataOutputStream out, String json) throws IOException {
        byte[] body = json.getBytes(StandardCharsets.UTF_8);
        out.writeInt(body.length);
        out.write(body);
        out.flush();
    }

    /** A small JSON reader: objects to maps, arrays to lists, numbers to doubles. */
    static final class Json {
        private final String text;
        private int at;

        Json(String text) {
            this.text = text;
        }

        Object value() throws IOException {
            skip();
            if (at >= text.length()) {
                throw new IOException("unexpected end of JSON");
            }
            char c = text.charAt(at);
            if (c == '{') {
                return object();
            }
            if (c == '[') {
                return array();
            }
            if (c == '"') {
                return string();
            }
            if (text.startsWith("true", at)) {
                at += 4;
                return Boolean.TRUE;
            }
            if (text.startsWith("false", at)) {
                at += 5;
                return Boolean.FALSE;
            }
            if (text.startsWith("null", at)) {
                at += 4;
                return null;
            }
            int start = at;
            while (at < text.length() && "+-0123456789.eE".indexOf(text.charAt(at)) >= 0) {
                at++;
            }
            if (start == at) {
                throw new IOException("bad JSON at " + at);
            }
            return Double.parseDouble(text.substring(start, at));
        }

        private Map<String, Object> object() throws IOException {
            Map<String, Object> map = new LinkedHashMap<>();
            at++;
            skip();
            if (text.charAt(at) == '}') {
                at++;
                return map;
            }
            while (true) {
                skip();
                String key = string();
                skip();
                expect(':');
                map.put(key, value());
                skip();
                if (text.charAt(at) == ',') {
                    at++;
                    continue;
                }
                expect('}');
                return map;
            }
        }

        private List<Object> array() throws IOException {
            List<Object> list = new ArrayList<>();
            at++;
            skip();
            if (text.charAt(at) == ']') {
                at++;
                return list;
            }
            while (true) {
                list.add(value());
                skip();
                if (text.charAt(at) == ',') {
                    at++;
                    continue;
                }
                expect(']');
                return list;
            }
        }

        private String string() throws IOException {
            expect('"');
            StringBuilder sb = new StringBuilder();
            while (true) {
                char c = text.charAt(at++);
                if (c == '"') {
                    return sb.toString();
                }
                if (c == '\\') {
                    char e = text.charAt(at++);
                    switch (e) {
                        case 'n': sb.append('\n'); break;
                        case 't': sb.append('\t'); break;
                        case 'r': sb.append('\r'); break;
                        case 'b': sb.append('\b'); break;
                        case 'f': sb.append('\f'); break;
                        case 'u':
                            sb.append((char) Integer.parseInt(text.substring(at, at + 4), 16));
                            at += 4;
                            break;
                        default: sb.append(e);
                    }
                } else {
                    sb.append(c);
                }
            }
        }

        private void expect(char c) throws IOException {
            if (at >= text.length() || text.charAt(at) != c) {
                throw new IOException("expected '" + c + "' at " + at);
            }
            at++;
        }

        private void skip() {
            while (at < text.length() && Character.isWhitespace(text.charAt(at))) {
                at++;
            }
        }
    }
}
