//! Writing 8-bit PNG files atomically: encoded into a temporary file beside the target,
//! then renamed over it, so a failure never leaves a half-written picture.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// The pixel layouts written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pixels {
    /// One byte per pixel, 0 black to 255 white.
    Grey,
    /// Three bytes per pixel: red, green, blue.
    Rgb,
}

/// Writes `data` (row-major, `width * height` pixels laid out as `pixels`) to `path`.
pub(crate) fn write_png(
    path: &Path,
    width: u32,
    height: u32,
    pixels: Pixels,
    data: &[u8],
) -> Result<()> {
    let encoding = |source| Error::Encoding {
        path: path.to_path_buf(),
        source,
    };
    let mut encoded = Vec::new();
    let mut encoder = png::Encoder::new(&mut encoded, width, height);
    encoder.set_color(match pixels {
        Pixels::Grey => png::ColorType::Grayscale,
        Pixels::Rgb => png::ColorType::Rgb,
    });
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(encoding)?;
    writer.write_image_data(data).map_err(encoding)?;
    writer.finish().map_err(encoding)?;

    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".plot-").suffix(".png.tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Readable like any file the user creates (0o666 less the umask), not 0o600.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut file = builder
        .tempfile_in(directory)
        .map_err(|source| Error::io(directory, source))?;
    file.write_all(&encoded)
        .map_err(|source| Error::io(file.path(), source))?;
    file.persist(path)
        .map_err(|error| Error::io(path, error.error))?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fs::File;
    use std::io::BufReader;
    use std::path::PathBuf;

    use super::*;

    /// A decoded PNG: width, height, colour type and pixel bytes.
    pub(crate) struct Decoded {
        pub(crate) width: usize,
        pub(crate) height: usize,
        pub(crate) color: png::ColorType,
        pub(crate) bytes: Vec<u8>,
    }

    /// Decodes the PNG at `path` with the `png` crate's decoder.
    pub(crate) fn read_png(path: &Path) -> Decoded {
        let decoder = png::Decoder::new(BufReader::new(File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut bytes = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut bytes).unwrap();
        bytes.truncate(info.buffer_size());
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        Decoded {
            width: info.width as usize,
            height: info.height as usize,
            color: info.color_type,
            bytes,
        }
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect()
    }

    #[test]
    fn writes_what_decodes_back_and_replaces_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("picture.png");
        std::fs::write(&path, b"old").unwrap();
        write_png(&path, 2, 1, Pixels::Rgb, &[1, 2, 3, 4, 5, 6]).unwrap();
        let decoded = read_png(&path);
        assert_eq!((decoded.width, decoded.height), (2, 1));
        assert_eq!(decoded.color, png::ColorType::Rgb);
        assert_eq!(decoded.bytes, [1, 2, 3, 4, 5, 6]);
        assert_eq!(entries(dir.path()), [path]);
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir").join("picture.png");
        let error = write_png(&missing, 1, 1, Pixels::Grey, &[0]).unwrap_err();
        assert!(matches!(error, Error::Io { .. }), "{error:?}");

        let path = dir.path().join("short.png");
        // Two pixels announced, one given: the encoder refuses.
        let error = write_png(&path, 2, 1, Pixels::Grey, &[0]).unwrap_err();
        assert!(matches!(error, Error::Encoding { .. }), "{error:?}");
        assert!(entries(dir.path()).is_empty());
    }
}
