pub use root::*;

const _: () = ::planus::check_version_compatibility("planus-1.3.0");

/// The root namespace
///
/// Generated from these locations:
/// * File `schema.fbs`
#[no_implicit_prelude]
#[allow(clippy::needless_lifetimes)]
mod root {
    /// The namespace `tflite`
    ///
    /// Generated from these locations:
    /// * File `schema.fbs`
    pub mod tflite {
        /// The table `CustomQuantization` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `CustomQuantization` in the file `schema.fbs:17`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct CustomQuantization {
            /// The field `custom` in the table `CustomQuantization`
            pub custom: ::core::option::Option<::planus::alloc::vec::Vec<u8>>,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for CustomQuantization {
            fn default() -> Self {
                Self {
                    custom: ::core::default::Default::default(),
                }
            }
        }

        impl CustomQuantization {
            /// Creates a [CustomQuantizationBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> CustomQuantizationBuilder<()> {
                CustomQuantizationBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_custom: impl ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
            ) -> ::planus::Offset<Self> {
                let prepared_custom = field_custom.prepare(builder);

                let mut table_writer: ::planus::table_writer::TableWriter<6> =
                    ::core::default::Default::default();
                if prepared_custom.is_some() {
                    table_writer.write_entry::<::planus::Offset<[u8]>>(0);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_custom) = prepared_custom {
                            object_writer.write::<_, _, 4>(&prepared_custom);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<CustomQuantization>> for CustomQuantization {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<CustomQuantization> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<CustomQuantization>> for CustomQuantization {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<CustomQuantization>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<CustomQuantization> for CustomQuantization {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<CustomQuantization> {
                CustomQuantization::create(builder, &self.custom)
            }
        }

        /// Builder for serializing an instance of the [CustomQuantization] type.
        ///
        /// Can be created using the [CustomQuantization::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct CustomQuantizationBuilder<State>(State);

        impl CustomQuantizationBuilder<()> {
            /// Setter for the [`custom` field](CustomQuantization#structfield.custom).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn custom<T0>(self, value: T0) -> CustomQuantizationBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
            {
                CustomQuantizationBuilder((value,))
            }

            /// Sets the [`custom` field](CustomQuantization#structfield.custom) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn custom_as_null(self) -> CustomQuantizationBuilder<((),)> {
                self.custom(())
            }
        }

        impl<T0> CustomQuantizationBuilder<(T0,)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [CustomQuantization].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<CustomQuantization>
            where
                Self: ::planus::WriteAsOffset<CustomQuantization>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>>
            ::planus::WriteAs<::planus::Offset<CustomQuantization>>
            for CustomQuantizationBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<CustomQuantization>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<CustomQuantization> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>>
            ::planus::WriteAsOptional<::planus::Offset<CustomQuantization>>
            for CustomQuantizationBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<CustomQuantization>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<CustomQuantization>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>>
            ::planus::WriteAsOffset<CustomQuantization> for CustomQuantizationBuilder<(T0,)>
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<CustomQuantization> {
                let (v0,) = &self.0;
                CustomQuantization::create(builder, v0)
            }
        }

        /// Reference to a deserialized [CustomQuantization].
        #[derive(Copy, Clone)]
        pub struct CustomQuantizationRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> CustomQuantizationRef<'a> {
            /// Getter for the [`custom` field](CustomQuantization#structfield.custom).
            #[inline]
            pub fn custom(&self) -> ::planus::Result<::core::option::Option<&'a [u8]>> {
                self.0.access(0, "CustomQuantization", "custom")
            }
        }

        impl<'a> ::core::fmt::Debug for CustomQuantizationRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("CustomQuantizationRef");
                if let ::core::option::Option::Some(field_custom) = self.custom().transpose() {
                    f.field("custom", &field_custom);
                }
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<CustomQuantizationRef<'a>> for CustomQuantization {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: CustomQuantizationRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    custom: value.custom()?.map(|v| v.to_vec()),
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for CustomQuantizationRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for CustomQuantizationRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[CustomQuantizationRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<CustomQuantization>> for CustomQuantization {
            type Value = ::planus::Offset<CustomQuantization>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<CustomQuantization>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for CustomQuantizationRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[CustomQuantizationRef]", "read_as_root", 0)
                })
            }
        }

        /// The union `QuantizationDetails` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Union `QuantizationDetails` in the file `schema.fbs:21`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub enum QuantizationDetails {
            /// The variant of type `CustomQuantization` in the union `QuantizationDetails`
            CustomQuantization(::planus::alloc::boxed::Box<self::CustomQuantization>),
        }

        impl QuantizationDetails {
            /// Creates a [QuantizationDetailsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> QuantizationDetailsBuilder<::planus::Uninitialized> {
                QuantizationDetailsBuilder(::planus::Uninitialized)
            }

            #[inline]
            pub fn create_custom_quantization(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::CustomQuantization>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(1, value.prepare(builder).downcast())
            }
        }

        impl ::planus::WriteAsUnion<QuantizationDetails> for QuantizationDetails {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::UnionOffset<Self> {
                match self {
                    Self::CustomQuantization(value) => {
                        Self::create_custom_quantization(builder, value)
                    }
                }
            }
        }

        impl ::planus::WriteAsOptionalUnion<QuantizationDetails> for QuantizationDetails {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<Self>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }

        /// Builder for serializing an instance of the [QuantizationDetails] type.
        ///
        /// Can be created using the [QuantizationDetails::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct QuantizationDetailsBuilder<T>(T);

        impl QuantizationDetailsBuilder<::planus::Uninitialized> {
            /// Creates an instance of the [`CustomQuantization` variant](QuantizationDetails#variant.CustomQuantization).
            #[inline]
            pub fn custom_quantization<T>(
                self,
                value: T,
            ) -> QuantizationDetailsBuilder<::planus::Initialized<1, T>>
            where
                T: ::planus::WriteAsOffset<self::CustomQuantization>,
            {
                QuantizationDetailsBuilder(::planus::Initialized(value))
            }
        }

        impl<const N: u8, T> QuantizationDetailsBuilder<::planus::Initialized<N, T>> {
            /// Finish writing the builder to get an [UnionOffset](::planus::UnionOffset) to a serialized [QuantizationDetails].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<QuantizationDetails>
            where
                Self: ::planus::WriteAsUnion<QuantizationDetails>,
            {
                ::planus::WriteAsUnion::prepare(&self, builder)
            }
        }

        impl<T> ::planus::WriteAsUnion<QuantizationDetails>
            for QuantizationDetailsBuilder<::planus::Initialized<1, T>>
        where
            T: ::planus::WriteAsOffset<self::CustomQuantization>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<QuantizationDetails> {
                ::planus::UnionOffset::new(1, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<QuantizationDetails>
            for QuantizationDetailsBuilder<::planus::Initialized<1, T>>
        where
            T: ::planus::WriteAsOffset<self::CustomQuantization>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<QuantizationDetails>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }

        /// Reference to a deserialized [QuantizationDetails].
        #[derive(Copy, Clone, Debug)]
        pub enum QuantizationDetailsRef<'a> {
            CustomQuantization(self::CustomQuantizationRef<'a>),
        }

        impl<'a> ::core::convert::TryFrom<QuantizationDetailsRef<'a>> for QuantizationDetails {
            type Error = ::planus::Error;

            fn try_from(value: QuantizationDetailsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(match value {
                    QuantizationDetailsRef::CustomQuantization(value) => {
                        Self::CustomQuantization(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }
                })
            }
        }

        impl<'a> ::planus::TableReadUnion<'a> for QuantizationDetailsRef<'a> {
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                tag: u8,
                field_offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                match tag {
                    1 => ::core::result::Result::Ok(Self::CustomQuantization(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    _ => {
                        ::core::result::Result::Err(::planus::errors::ErrorKind::UnknownUnionTag {
                            tag,
                        })
                    }
                }
            }
        }

        impl<'a> ::planus::VectorReadUnion<'a> for QuantizationDetailsRef<'a> {
            const VECTOR_NAME: &'static str = "[QuantizationDetailsRef]";
        }

        /// The table `QuantizationParameters` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `QuantizationParameters` in the file `schema.fbs:25`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub struct QuantizationParameters {
            /// The field `min` in the table `QuantizationParameters`
            pub min: ::core::option::Option<::planus::alloc::vec::Vec<f32>>,
            /// The field `max` in the table `QuantizationParameters`
            pub max: ::core::option::Option<::planus::alloc::vec::Vec<f32>>,
            /// The field `scale` in the table `QuantizationParameters`
            pub scale: ::core::option::Option<::planus::alloc::vec::Vec<f32>>,
            /// The field `zero_point` in the table `QuantizationParameters`
            pub zero_point: ::core::option::Option<::planus::alloc::vec::Vec<i64>>,
            /// The field `details` in the table `QuantizationParameters`
            pub details: ::core::option::Option<self::QuantizationDetails>,
            /// The field `quantized_dimension` in the table `QuantizationParameters`
            pub quantized_dimension: i32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for QuantizationParameters {
            fn default() -> Self {
                Self {
                    min: ::core::default::Default::default(),
                    max: ::core::default::Default::default(),
                    scale: ::core::default::Default::default(),
                    zero_point: ::core::default::Default::default(),
                    details: ::core::default::Default::default(),
                    quantized_dimension: 0,
                }
            }
        }

        impl QuantizationParameters {
            /// Creates a [QuantizationParametersBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> QuantizationParametersBuilder<()> {
                QuantizationParametersBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_min: impl ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                field_max: impl ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                field_scale: impl ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                field_zero_point: impl ::planus::WriteAsOptional<::planus::Offset<[i64]>>,
                field_details: impl ::planus::WriteAsOptionalUnion<self::QuantizationDetails>,
                field_quantized_dimension: impl ::planus::WriteAsDefault<i32, i32>,
            ) -> ::planus::Offset<Self> {
                let prepared_min = field_min.prepare(builder);
                let prepared_max = field_max.prepare(builder);
                let prepared_scale = field_scale.prepare(builder);
                let prepared_zero_point = field_zero_point.prepare(builder);
                let prepared_details = field_details.prepare(builder);
                let prepared_quantized_dimension = field_quantized_dimension.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<18> =
                    ::core::default::Default::default();
                if prepared_min.is_some() {
                    table_writer.write_entry::<::planus::Offset<[f32]>>(0);
                }
                if prepared_max.is_some() {
                    table_writer.write_entry::<::planus::Offset<[f32]>>(1);
                }
                if prepared_scale.is_some() {
                    table_writer.write_entry::<::planus::Offset<[f32]>>(2);
                }
                if prepared_zero_point.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i64]>>(3);
                }
                if prepared_details.is_some() {
                    table_writer.write_entry::<::planus::Offset<self::QuantizationDetails>>(5);
                }
                if prepared_quantized_dimension.is_some() {
                    table_writer.write_entry::<i32>(6);
                }
                if prepared_details.is_some() {
                    table_writer.write_entry::<u8>(4);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_min) = prepared_min {
                            object_writer.write::<_, _, 4>(&prepared_min);
                        }
                        if let ::core::option::Option::Some(prepared_max) = prepared_max {
                            object_writer.write::<_, _, 4>(&prepared_max);
                        }
                        if let ::core::option::Option::Some(prepared_scale) = prepared_scale {
                            object_writer.write::<_, _, 4>(&prepared_scale);
                        }
                        if let ::core::option::Option::Some(prepared_zero_point) =
                            prepared_zero_point
                        {
                            object_writer.write::<_, _, 4>(&prepared_zero_point);
                        }
                        if let ::core::option::Option::Some(prepared_details) = prepared_details {
                            object_writer.write::<_, _, 4>(&prepared_details.offset());
                        }
                        if let ::core::option::Option::Some(prepared_quantized_dimension) =
                            prepared_quantized_dimension
                        {
                            object_writer.write::<_, _, 4>(&prepared_quantized_dimension);
                        }
                        if let ::core::option::Option::Some(prepared_details) = prepared_details {
                            object_writer.write::<_, _, 1>(&prepared_details.tag());
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<QuantizationParameters>> for QuantizationParameters {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<QuantizationParameters> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<QuantizationParameters>>
            for QuantizationParameters
        {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<QuantizationParameters>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<QuantizationParameters> for QuantizationParameters {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<QuantizationParameters> {
                QuantizationParameters::create(
                    builder,
                    &self.min,
                    &self.max,
                    &self.scale,
                    &self.zero_point,
                    &self.details,
                    self.quantized_dimension,
                )
            }
        }

        /// Builder for serializing an instance of the [QuantizationParameters] type.
        ///
        /// Can be created using the [QuantizationParameters::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct QuantizationParametersBuilder<State>(State);

        impl QuantizationParametersBuilder<()> {
            /// Setter for the [`min` field](QuantizationParameters#structfield.min).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn min<T0>(self, value: T0) -> QuantizationParametersBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
            {
                QuantizationParametersBuilder((value,))
            }

            /// Sets the [`min` field](QuantizationParameters#structfield.min) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn min_as_null(self) -> QuantizationParametersBuilder<((),)> {
                self.min(())
            }
        }

        impl<T0> QuantizationParametersBuilder<(T0,)> {
            /// Setter for the [`max` field](QuantizationParameters#structfield.max).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn max<T1>(self, value: T1) -> QuantizationParametersBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
            {
                let (v0,) = self.0;
                QuantizationParametersBuilder((v0, value))
            }

            /// Sets the [`max` field](QuantizationParameters#structfield.max) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn max_as_null(self) -> QuantizationParametersBuilder<(T0, ())> {
                self.max(())
            }
        }

        impl<T0, T1> QuantizationParametersBuilder<(T0, T1)> {
            /// Setter for the [`scale` field](QuantizationParameters#structfield.scale).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn scale<T2>(self, value: T2) -> QuantizationParametersBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
            {
                let (v0, v1) = self.0;
                QuantizationParametersBuilder((v0, v1, value))
            }

            /// Sets the [`scale` field](QuantizationParameters#structfield.scale) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn scale_as_null(self) -> QuantizationParametersBuilder<(T0, T1, ())> {
                self.scale(())
            }
        }

        impl<T0, T1, T2> QuantizationParametersBuilder<(T0, T1, T2)> {
            /// Setter for the [`zero_point` field](QuantizationParameters#structfield.zero_point).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn zero_point<T3>(
                self,
                value: T3,
            ) -> QuantizationParametersBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsOptional<::planus::Offset<[i64]>>,
            {
                let (v0, v1, v2) = self.0;
                QuantizationParametersBuilder((v0, v1, v2, value))
            }

            /// Sets the [`zero_point` field](QuantizationParameters#structfield.zero_point) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn zero_point_as_null(self) -> QuantizationParametersBuilder<(T0, T1, T2, ())> {
                self.zero_point(())
            }
        }

        impl<T0, T1, T2, T3> QuantizationParametersBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`details` field](QuantizationParameters#structfield.details).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn details<T4>(
                self,
                value: T4,
            ) -> QuantizationParametersBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsOptionalUnion<self::QuantizationDetails>,
            {
                let (v0, v1, v2, v3) = self.0;
                QuantizationParametersBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`details` field](QuantizationParameters#structfield.details) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn details_as_null(self) -> QuantizationParametersBuilder<(T0, T1, T2, T3, ())> {
                self.details(())
            }
        }

        impl<T0, T1, T2, T3, T4> QuantizationParametersBuilder<(T0, T1, T2, T3, T4)> {
            /// Setter for the [`quantized_dimension` field](QuantizationParameters#structfield.quantized_dimension).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn quantized_dimension<T5>(
                self,
                value: T5,
            ) -> QuantizationParametersBuilder<(T0, T1, T2, T3, T4, T5)>
            where
                T5: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2, v3, v4) = self.0;
                QuantizationParametersBuilder((v0, v1, v2, v3, v4, value))
            }

            /// Sets the [`quantized_dimension` field](QuantizationParameters#structfield.quantized_dimension) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn quantized_dimension_as_default(
                self,
            ) -> QuantizationParametersBuilder<(T0, T1, T2, T3, T4, ::planus::DefaultValue)>
            {
                self.quantized_dimension(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4, T5> QuantizationParametersBuilder<(T0, T1, T2, T3, T4, T5)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [QuantizationParameters].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<QuantizationParameters>
            where
                Self: ::planus::WriteAsOffset<QuantizationParameters>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<[i64]>>,
                T4: ::planus::WriteAsOptionalUnion<self::QuantizationDetails>,
                T5: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAs<::planus::Offset<QuantizationParameters>>
            for QuantizationParametersBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            type Prepared = ::planus::Offset<QuantizationParameters>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<QuantizationParameters> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<[i64]>>,
                T4: ::planus::WriteAsOptionalUnion<self::QuantizationDetails>,
                T5: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAsOptional<::planus::Offset<QuantizationParameters>>
            for QuantizationParametersBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            type Prepared = ::planus::Offset<QuantizationParameters>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<QuantizationParameters>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[f32]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<[i64]>>,
                T4: ::planus::WriteAsOptionalUnion<self::QuantizationDetails>,
                T5: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAsOffset<QuantizationParameters>
            for QuantizationParametersBuilder<(T0, T1, T2, T3, T4, T5)>
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<QuantizationParameters> {
                let (v0, v1, v2, v3, v4, v5) = &self.0;
                QuantizationParameters::create(builder, v0, v1, v2, v3, v4, v5)
            }
        }

        /// Reference to a deserialized [QuantizationParameters].
        #[derive(Copy, Clone)]
        pub struct QuantizationParametersRef<'a>(
            #[allow(dead_code)] ::planus::table_reader::Table<'a>,
        );

        impl<'a> QuantizationParametersRef<'a> {
            /// Getter for the [`min` field](QuantizationParameters#structfield.min).
            #[inline]
            pub fn min(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, f32>>> {
                self.0.access(0, "QuantizationParameters", "min")
            }

            /// Getter for the [`max` field](QuantizationParameters#structfield.max).
            #[inline]
            pub fn max(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, f32>>> {
                self.0.access(1, "QuantizationParameters", "max")
            }

            /// Getter for the [`scale` field](QuantizationParameters#structfield.scale).
            #[inline]
            pub fn scale(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, f32>>> {
                self.0.access(2, "QuantizationParameters", "scale")
            }

            /// Getter for the [`zero_point` field](QuantizationParameters#structfield.zero_point).
            #[inline]
            pub fn zero_point(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i64>>> {
                self.0.access(3, "QuantizationParameters", "zero_point")
            }

            /// Getter for the [`details` field](QuantizationParameters#structfield.details).
            #[inline]
            pub fn details(
                &self,
            ) -> ::planus::Result<::core::option::Option<self::QuantizationDetailsRef<'a>>>
            {
                self.0.access_union(4, "QuantizationParameters", "details")
            }

            /// Getter for the [`quantized_dimension` field](QuantizationParameters#structfield.quantized_dimension).
            #[inline]
            pub fn quantized_dimension(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(6, "QuantizationParameters", "quantized_dimension")?
                        .unwrap_or(0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for QuantizationParametersRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("QuantizationParametersRef");
                if let ::core::option::Option::Some(field_min) = self.min().transpose() {
                    f.field("min", &field_min);
                }
                if let ::core::option::Option::Some(field_max) = self.max().transpose() {
                    f.field("max", &field_max);
                }
                if let ::core::option::Option::Some(field_scale) = self.scale().transpose() {
                    f.field("scale", &field_scale);
                }
                if let ::core::option::Option::Some(field_zero_point) =
                    self.zero_point().transpose()
                {
                    f.field("zero_point", &field_zero_point);
                }
                if let ::core::option::Option::Some(field_details) = self.details().transpose() {
                    f.field("details", &field_details);
                }
                f.field("quantized_dimension", &self.quantized_dimension());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<QuantizationParametersRef<'a>> for QuantizationParameters {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: QuantizationParametersRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    min: if let ::core::option::Option::Some(min) = value.min()? {
                        ::core::option::Option::Some(min.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    max: if let ::core::option::Option::Some(max) = value.max()? {
                        ::core::option::Option::Some(max.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    scale: if let ::core::option::Option::Some(scale) = value.scale()? {
                        ::core::option::Option::Some(scale.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    zero_point: if let ::core::option::Option::Some(zero_point) =
                        value.zero_point()?
                    {
                        ::core::option::Option::Some(zero_point.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    details: if let ::core::option::Option::Some(details) = value.details()? {
                        ::core::option::Option::Some(::core::convert::TryInto::try_into(details)?)
                    } else {
                        ::core::option::Option::None
                    },
                    quantized_dimension: ::core::convert::TryInto::try_into(
                        value.quantized_dimension()?,
                    )?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for QuantizationParametersRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for QuantizationParametersRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[QuantizationParametersRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<QuantizationParameters>>
            for QuantizationParameters
        {
            type Value = ::planus::Offset<QuantizationParameters>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<QuantizationParameters>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for QuantizationParametersRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[QuantizationParametersRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `SparsityParameters` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `SparsityParameters` in the file `schema.fbs:35`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct SparsityParameters {}

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for SparsityParameters {
            fn default() -> Self {
                Self {}
            }
        }

        impl SparsityParameters {
            /// Creates a [SparsityParametersBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> SparsityParametersBuilder<()> {
                SparsityParametersBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(builder: &mut ::planus::Builder) -> ::planus::Offset<Self> {
                let table_writer: ::planus::table_writer::TableWriter<4> =
                    ::core::default::Default::default();
                unsafe {
                    table_writer.finish(builder, |_table_writer| {});
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<SparsityParameters>> for SparsityParameters {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<SparsityParameters> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<SparsityParameters>> for SparsityParameters {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SparsityParameters>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<SparsityParameters> for SparsityParameters {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<SparsityParameters> {
                SparsityParameters::create(builder)
            }
        }

        /// Builder for serializing an instance of the [SparsityParameters] type.
        ///
        /// Can be created using the [SparsityParameters::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct SparsityParametersBuilder<State>(State);

        impl SparsityParametersBuilder<()> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [SparsityParameters].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<SparsityParameters>
            where
                Self: ::planus::WriteAsOffset<SparsityParameters>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl ::planus::WriteAs<::planus::Offset<SparsityParameters>> for SparsityParametersBuilder<()> {
            type Prepared = ::planus::Offset<SparsityParameters>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<SparsityParameters> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<SparsityParameters>>
            for SparsityParametersBuilder<()>
        {
            type Prepared = ::planus::Offset<SparsityParameters>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SparsityParameters>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<SparsityParameters> for SparsityParametersBuilder<()> {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<SparsityParameters> {
                SparsityParameters::create(builder)
            }
        }

        /// Reference to a deserialized [SparsityParameters].
        #[derive(Copy, Clone)]
        pub struct SparsityParametersRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> SparsityParametersRef<'a> {}

        impl<'a> ::core::fmt::Debug for SparsityParametersRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("SparsityParametersRef");

                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<SparsityParametersRef<'a>> for SparsityParameters {
            type Error = ::planus::Error;

            fn try_from(_value: SparsityParametersRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {})
            }
        }

        impl<'a> ::planus::TableRead<'a> for SparsityParametersRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for SparsityParametersRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[SparsityParametersRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<SparsityParameters>> for SparsityParameters {
            type Value = ::planus::Offset<SparsityParameters>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<SparsityParameters>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for SparsityParametersRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[SparsityParametersRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `Tensor` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `Tensor` in the file `schema.fbs:38`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub struct Tensor {
            /// The field `shape` in the table `Tensor`
            pub shape: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
            /// The field `type` in the table `Tensor`
            pub type_: i8,
            /// The field `buffer` in the table `Tensor`
            pub buffer: u32,
            /// The field `name` in the table `Tensor`
            pub name: ::core::option::Option<::planus::alloc::string::String>,
            /// The field `quantization` in the table `Tensor`
            pub quantization:
                ::core::option::Option<::planus::alloc::boxed::Box<self::QuantizationParameters>>,
            /// The field `is_variable` in the table `Tensor`
            pub is_variable: bool,
            /// The field `sparsity` in the table `Tensor`
            pub sparsity:
                ::core::option::Option<::planus::alloc::boxed::Box<self::SparsityParameters>>,
            /// The field `shape_signature` in the table `Tensor`
            pub shape_signature: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for Tensor {
            fn default() -> Self {
                Self {
                    shape: ::core::default::Default::default(),
                    type_: 0,
                    buffer: 0,
                    name: ::core::default::Default::default(),
                    quantization: ::core::default::Default::default(),
                    is_variable: false,
                    sparsity: ::core::default::Default::default(),
                    shape_signature: ::core::default::Default::default(),
                }
            }
        }

        impl Tensor {
            /// Creates a [TensorBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> TensorBuilder<()> {
                TensorBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_shape: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                field_type_: impl ::planus::WriteAsDefault<i8, i8>,
                field_buffer: impl ::planus::WriteAsDefault<u32, u32>,
                field_name: impl ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                field_quantization: impl ::planus::WriteAsOptional<
                    ::planus::Offset<self::QuantizationParameters>,
                >,
                field_is_variable: impl ::planus::WriteAsDefault<bool, bool>,
                field_sparsity: impl ::planus::WriteAsOptional<
                    ::planus::Offset<self::SparsityParameters>,
                >,
                field_shape_signature: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            ) -> ::planus::Offset<Self> {
                let prepared_shape = field_shape.prepare(builder);
                let prepared_type_ = field_type_.prepare(builder, &0);
                let prepared_buffer = field_buffer.prepare(builder, &0);
                let prepared_name = field_name.prepare(builder);
                let prepared_quantization = field_quantization.prepare(builder);
                let prepared_is_variable = field_is_variable.prepare(builder, &false);
                let prepared_sparsity = field_sparsity.prepare(builder);
                let prepared_shape_signature = field_shape_signature.prepare(builder);

                let mut table_writer: ::planus::table_writer::TableWriter<20> =
                    ::core::default::Default::default();
                if prepared_shape.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(0);
                }
                if prepared_buffer.is_some() {
                    table_writer.write_entry::<u32>(2);
                }
                if prepared_name.is_some() {
                    table_writer.write_entry::<::planus::Offset<str>>(3);
                }
                if prepared_quantization.is_some() {
                    table_writer.write_entry::<::planus::Offset<self::QuantizationParameters>>(4);
                }
                if prepared_sparsity.is_some() {
                    table_writer.write_entry::<::planus::Offset<self::SparsityParameters>>(6);
                }
                if prepared_shape_signature.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(7);
                }
                if prepared_type_.is_some() {
                    table_writer.write_entry::<i8>(1);
                }
                if prepared_is_variable.is_some() {
                    table_writer.write_entry::<bool>(5);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_shape) = prepared_shape {
                            object_writer.write::<_, _, 4>(&prepared_shape);
                        }
                        if let ::core::option::Option::Some(prepared_buffer) = prepared_buffer {
                            object_writer.write::<_, _, 4>(&prepared_buffer);
                        }
                        if let ::core::option::Option::Some(prepared_name) = prepared_name {
                            object_writer.write::<_, _, 4>(&prepared_name);
                        }
                        if let ::core::option::Option::Some(prepared_quantization) =
                            prepared_quantization
                        {
                            object_writer.write::<_, _, 4>(&prepared_quantization);
                        }
                        if let ::core::option::Option::Some(prepared_sparsity) = prepared_sparsity {
                            object_writer.write::<_, _, 4>(&prepared_sparsity);
                        }
                        if let ::core::option::Option::Some(prepared_shape_signature) =
                            prepared_shape_signature
                        {
                            object_writer.write::<_, _, 4>(&prepared_shape_signature);
                        }
                        if let ::core::option::Option::Some(prepared_type_) = prepared_type_ {
                            object_writer.write::<_, _, 1>(&prepared_type_);
                        }
                        if let ::core::option::Option::Some(prepared_is_variable) =
                            prepared_is_variable
                        {
                            object_writer.write::<_, _, 1>(&prepared_is_variable);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<Tensor>> for Tensor {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Tensor> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<Tensor>> for Tensor {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Tensor>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<Tensor> for Tensor {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Tensor> {
                Tensor::create(
                    builder,
                    &self.shape,
                    self.type_,
                    self.buffer,
                    &self.name,
                    &self.quantization,
                    self.is_variable,
                    &self.sparsity,
                    &self.shape_signature,
                )
            }
        }

        /// Builder for serializing an instance of the [Tensor] type.
        ///
        /// Can be created using the [Tensor::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct TensorBuilder<State>(State);

        impl TensorBuilder<()> {
            /// Setter for the [`shape` field](Tensor#structfield.shape).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn shape<T0>(self, value: T0) -> TensorBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                TensorBuilder((value,))
            }

            /// Sets the [`shape` field](Tensor#structfield.shape) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn shape_as_null(self) -> TensorBuilder<((),)> {
                self.shape(())
            }
        }

        impl<T0> TensorBuilder<(T0,)> {
            /// Setter for the [`type` field](Tensor#structfield.type_).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn type_<T1>(self, value: T1) -> TensorBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<i8, i8>,
            {
                let (v0,) = self.0;
                TensorBuilder((v0, value))
            }

            /// Sets the [`type` field](Tensor#structfield.type_) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn type_as_default(self) -> TensorBuilder<(T0, ::planus::DefaultValue)> {
                self.type_(::planus::DefaultValue)
            }
        }

        impl<T0, T1> TensorBuilder<(T0, T1)> {
            /// Setter for the [`buffer` field](Tensor#structfield.buffer).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn buffer<T2>(self, value: T2) -> TensorBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsDefault<u32, u32>,
            {
                let (v0, v1) = self.0;
                TensorBuilder((v0, v1, value))
            }

            /// Sets the [`buffer` field](Tensor#structfield.buffer) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn buffer_as_default(self) -> TensorBuilder<(T0, T1, ::planus::DefaultValue)> {
                self.buffer(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2> TensorBuilder<(T0, T1, T2)> {
            /// Setter for the [`name` field](Tensor#structfield.name).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn name<T3>(self, value: T3) -> TensorBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            {
                let (v0, v1, v2) = self.0;
                TensorBuilder((v0, v1, v2, value))
            }

            /// Sets the [`name` field](Tensor#structfield.name) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn name_as_null(self) -> TensorBuilder<(T0, T1, T2, ())> {
                self.name(())
            }
        }

        impl<T0, T1, T2, T3> TensorBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`quantization` field](Tensor#structfield.quantization).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn quantization<T4>(self, value: T4) -> TensorBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsOptional<::planus::Offset<self::QuantizationParameters>>,
            {
                let (v0, v1, v2, v3) = self.0;
                TensorBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`quantization` field](Tensor#structfield.quantization) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn quantization_as_null(self) -> TensorBuilder<(T0, T1, T2, T3, ())> {
                self.quantization(())
            }
        }

        impl<T0, T1, T2, T3, T4> TensorBuilder<(T0, T1, T2, T3, T4)> {
            /// Setter for the [`is_variable` field](Tensor#structfield.is_variable).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn is_variable<T5>(self, value: T5) -> TensorBuilder<(T0, T1, T2, T3, T4, T5)>
            where
                T5: ::planus::WriteAsDefault<bool, bool>,
            {
                let (v0, v1, v2, v3, v4) = self.0;
                TensorBuilder((v0, v1, v2, v3, v4, value))
            }

            /// Sets the [`is_variable` field](Tensor#structfield.is_variable) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn is_variable_as_default(
                self,
            ) -> TensorBuilder<(T0, T1, T2, T3, T4, ::planus::DefaultValue)> {
                self.is_variable(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4, T5> TensorBuilder<(T0, T1, T2, T3, T4, T5)> {
            /// Setter for the [`sparsity` field](Tensor#structfield.sparsity).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn sparsity<T6>(self, value: T6) -> TensorBuilder<(T0, T1, T2, T3, T4, T5, T6)>
            where
                T6: ::planus::WriteAsOptional<::planus::Offset<self::SparsityParameters>>,
            {
                let (v0, v1, v2, v3, v4, v5) = self.0;
                TensorBuilder((v0, v1, v2, v3, v4, v5, value))
            }

            /// Sets the [`sparsity` field](Tensor#structfield.sparsity) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn sparsity_as_null(self) -> TensorBuilder<(T0, T1, T2, T3, T4, T5, ())> {
                self.sparsity(())
            }
        }

        impl<T0, T1, T2, T3, T4, T5, T6> TensorBuilder<(T0, T1, T2, T3, T4, T5, T6)> {
            /// Setter for the [`shape_signature` field](Tensor#structfield.shape_signature).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn shape_signature<T7>(
                self,
                value: T7,
            ) -> TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)>
            where
                T7: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                let (v0, v1, v2, v3, v4, v5, v6) = self.0;
                TensorBuilder((v0, v1, v2, v3, v4, v5, v6, value))
            }

            /// Sets the [`shape_signature` field](Tensor#structfield.shape_signature) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn shape_signature_as_null(
                self,
            ) -> TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, ())> {
                self.shape_signature(())
            }
        }

        impl<T0, T1, T2, T3, T4, T5, T6, T7> TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [Tensor].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<Tensor>
            where
                Self: ::planus::WriteAsOffset<Tensor>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T1: ::planus::WriteAsDefault<i8, i8>,
                T2: ::planus::WriteAsDefault<u32, u32>,
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<self::QuantizationParameters>>,
                T5: ::planus::WriteAsDefault<bool, bool>,
                T6: ::planus::WriteAsOptional<::planus::Offset<self::SparsityParameters>>,
                T7: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            > ::planus::WriteAs<::planus::Offset<Tensor>>
            for TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)>
        {
            type Prepared = ::planus::Offset<Tensor>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Tensor> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T1: ::planus::WriteAsDefault<i8, i8>,
                T2: ::planus::WriteAsDefault<u32, u32>,
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<self::QuantizationParameters>>,
                T5: ::planus::WriteAsDefault<bool, bool>,
                T6: ::planus::WriteAsOptional<::planus::Offset<self::SparsityParameters>>,
                T7: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            > ::planus::WriteAsOptional<::planus::Offset<Tensor>>
            for TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)>
        {
            type Prepared = ::planus::Offset<Tensor>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Tensor>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T1: ::planus::WriteAsDefault<i8, i8>,
                T2: ::planus::WriteAsDefault<u32, u32>,
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<self::QuantizationParameters>>,
                T5: ::planus::WriteAsDefault<bool, bool>,
                T6: ::planus::WriteAsOptional<::planus::Offset<self::SparsityParameters>>,
                T7: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            > ::planus::WriteAsOffset<Tensor> for TensorBuilder<(T0, T1, T2, T3, T4, T5, T6, T7)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Tensor> {
                let (v0, v1, v2, v3, v4, v5, v6, v7) = &self.0;
                Tensor::create(builder, v0, v1, v2, v3, v4, v5, v6, v7)
            }
        }

        /// Reference to a deserialized [Tensor].
        #[derive(Copy, Clone)]
        pub struct TensorRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> TensorRef<'a> {
            /// Getter for the [`shape` field](Tensor#structfield.shape).
            #[inline]
            pub fn shape(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(0, "Tensor", "shape")
            }

            /// Getter for the [`type` field](Tensor#structfield.type_).
            #[inline]
            pub fn type_(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(self.0.access(1, "Tensor", "type_")?.unwrap_or(0))
            }

            /// Getter for the [`buffer` field](Tensor#structfield.buffer).
            #[inline]
            pub fn buffer(&self) -> ::planus::Result<u32> {
                ::core::result::Result::Ok(self.0.access(2, "Tensor", "buffer")?.unwrap_or(0))
            }

            /// Getter for the [`name` field](Tensor#structfield.name).
            #[inline]
            pub fn name(
                &self,
            ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>> {
                self.0.access(3, "Tensor", "name")
            }

            /// Getter for the [`quantization` field](Tensor#structfield.quantization).
            #[inline]
            pub fn quantization(
                &self,
            ) -> ::planus::Result<::core::option::Option<self::QuantizationParametersRef<'a>>>
            {
                self.0.access(4, "Tensor", "quantization")
            }

            /// Getter for the [`is_variable` field](Tensor#structfield.is_variable).
            #[inline]
            pub fn is_variable(&self) -> ::planus::Result<bool> {
                ::core::result::Result::Ok(
                    self.0.access(5, "Tensor", "is_variable")?.unwrap_or(false),
                )
            }

            /// Getter for the [`sparsity` field](Tensor#structfield.sparsity).
            #[inline]
            pub fn sparsity(
                &self,
            ) -> ::planus::Result<::core::option::Option<self::SparsityParametersRef<'a>>>
            {
                self.0.access(6, "Tensor", "sparsity")
            }

            /// Getter for the [`shape_signature` field](Tensor#structfield.shape_signature).
            #[inline]
            pub fn shape_signature(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(7, "Tensor", "shape_signature")
            }
        }

        impl<'a> ::core::fmt::Debug for TensorRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("TensorRef");
                if let ::core::option::Option::Some(field_shape) = self.shape().transpose() {
                    f.field("shape", &field_shape);
                }
                f.field("type_", &self.type_());
                f.field("buffer", &self.buffer());
                if let ::core::option::Option::Some(field_name) = self.name().transpose() {
                    f.field("name", &field_name);
                }
                if let ::core::option::Option::Some(field_quantization) =
                    self.quantization().transpose()
                {
                    f.field("quantization", &field_quantization);
                }
                f.field("is_variable", &self.is_variable());
                if let ::core::option::Option::Some(field_sparsity) = self.sparsity().transpose() {
                    f.field("sparsity", &field_sparsity);
                }
                if let ::core::option::Option::Some(field_shape_signature) =
                    self.shape_signature().transpose()
                {
                    f.field("shape_signature", &field_shape_signature);
                }
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<TensorRef<'a>> for Tensor {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: TensorRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    shape: if let ::core::option::Option::Some(shape) = value.shape()? {
                        ::core::option::Option::Some(shape.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    type_: ::core::convert::TryInto::try_into(value.type_()?)?,
                    buffer: ::core::convert::TryInto::try_into(value.buffer()?)?,
                    name: value.name()?.map(::core::convert::Into::into),
                    quantization: if let ::core::option::Option::Some(quantization) =
                        value.quantization()?
                    {
                        ::core::option::Option::Some(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryInto::try_into(quantization)?,
                        ))
                    } else {
                        ::core::option::Option::None
                    },
                    is_variable: ::core::convert::TryInto::try_into(value.is_variable()?)?,
                    sparsity: if let ::core::option::Option::Some(sparsity) = value.sparsity()? {
                        ::core::option::Option::Some(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryInto::try_into(sparsity)?,
                        ))
                    } else {
                        ::core::option::Option::None
                    },
                    shape_signature: if let ::core::option::Option::Some(shape_signature) =
                        value.shape_signature()?
                    {
                        ::core::option::Option::Some(shape_signature.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for TensorRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for TensorRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location("[TensorRef]", "get", buffer.offset_from_start)
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<Tensor>> for Tensor {
            type Value = ::planus::Offset<Tensor>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<Tensor>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for TensorRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[TensorRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `FullyConnectedOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `FullyConnectedOptions` in the file `schema.fbs:49`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct FullyConnectedOptions {
            /// The field `fused_activation_function` in the table `FullyConnectedOptions`
            pub fused_activation_function: i8,
            /// The field `weights_format` in the table `FullyConnectedOptions`
            pub weights_format: i8,
            /// The field `keep_num_dims` in the table `FullyConnectedOptions`
            pub keep_num_dims: bool,
            /// The field `asymmetric_quantize_inputs` in the table `FullyConnectedOptions`
            pub asymmetric_quantize_inputs: bool,
            /// The field `quantized_bias_type` in the table `FullyConnectedOptions`
            pub quantized_bias_type: i8,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for FullyConnectedOptions {
            fn default() -> Self {
                Self {
                    fused_activation_function: 0,
                    weights_format: 0,
                    keep_num_dims: false,
                    asymmetric_quantize_inputs: false,
                    quantized_bias_type: 0,
                }
            }
        }

        impl FullyConnectedOptions {
            /// Creates a [FullyConnectedOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> FullyConnectedOptionsBuilder<()> {
                FullyConnectedOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_fused_activation_function: impl ::planus::WriteAsDefault<i8, i8>,
                field_weights_format: impl ::planus::WriteAsDefault<i8, i8>,
                field_keep_num_dims: impl ::planus::WriteAsDefault<bool, bool>,
                field_asymmetric_quantize_inputs: impl ::planus::WriteAsDefault<bool, bool>,
                field_quantized_bias_type: impl ::planus::WriteAsDefault<i8, i8>,
            ) -> ::planus::Offset<Self> {
                let prepared_fused_activation_function =
                    field_fused_activation_function.prepare(builder, &0);
                let prepared_weights_format = field_weights_format.prepare(builder, &0);
                let prepared_keep_num_dims = field_keep_num_dims.prepare(builder, &false);
                let prepared_asymmetric_quantize_inputs =
                    field_asymmetric_quantize_inputs.prepare(builder, &false);
                let prepared_quantized_bias_type = field_quantized_bias_type.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<14> =
                    ::core::default::Default::default();
                if prepared_fused_activation_function.is_some() {
                    table_writer.write_entry::<i8>(0);
                }
                if prepared_weights_format.is_some() {
                    table_writer.write_entry::<i8>(1);
                }
                if prepared_keep_num_dims.is_some() {
                    table_writer.write_entry::<bool>(2);
                }
                if prepared_asymmetric_quantize_inputs.is_some() {
                    table_writer.write_entry::<bool>(3);
                }
                if prepared_quantized_bias_type.is_some() {
                    table_writer.write_entry::<i8>(4);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_fused_activation_function) =
                            prepared_fused_activation_function
                        {
                            object_writer.write::<_, _, 1>(&prepared_fused_activation_function);
                        }
                        if let ::core::option::Option::Some(prepared_weights_format) =
                            prepared_weights_format
                        {
                            object_writer.write::<_, _, 1>(&prepared_weights_format);
                        }
                        if let ::core::option::Option::Some(prepared_keep_num_dims) =
                            prepared_keep_num_dims
                        {
                            object_writer.write::<_, _, 1>(&prepared_keep_num_dims);
                        }
                        if let ::core::option::Option::Some(prepared_asymmetric_quantize_inputs) =
                            prepared_asymmetric_quantize_inputs
                        {
                            object_writer.write::<_, _, 1>(&prepared_asymmetric_quantize_inputs);
                        }
                        if let ::core::option::Option::Some(prepared_quantized_bias_type) =
                            prepared_quantized_bias_type
                        {
                            object_writer.write::<_, _, 1>(&prepared_quantized_bias_type);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<FullyConnectedOptions>> for FullyConnectedOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<FullyConnectedOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<FullyConnectedOptions>> for FullyConnectedOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<FullyConnectedOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<FullyConnectedOptions> for FullyConnectedOptions {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<FullyConnectedOptions> {
                FullyConnectedOptions::create(
                    builder,
                    self.fused_activation_function,
                    self.weights_format,
                    self.keep_num_dims,
                    self.asymmetric_quantize_inputs,
                    self.quantized_bias_type,
                )
            }
        }

        /// Builder for serializing an instance of the [FullyConnectedOptions] type.
        ///
        /// Can be created using the [FullyConnectedOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct FullyConnectedOptionsBuilder<State>(State);

        impl FullyConnectedOptionsBuilder<()> {
            /// Setter for the [`fused_activation_function` field](FullyConnectedOptions#structfield.fused_activation_function).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn fused_activation_function<T0>(
                self,
                value: T0,
            ) -> FullyConnectedOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<i8, i8>,
            {
                FullyConnectedOptionsBuilder((value,))
            }

            /// Sets the [`fused_activation_function` field](FullyConnectedOptions#structfield.fused_activation_function) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn fused_activation_function_as_default(
                self,
            ) -> FullyConnectedOptionsBuilder<(::planus::DefaultValue,)> {
                self.fused_activation_function(::planus::DefaultValue)
            }
        }

        impl<T0> FullyConnectedOptionsBuilder<(T0,)> {
            /// Setter for the [`weights_format` field](FullyConnectedOptions#structfield.weights_format).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn weights_format<T1>(self, value: T1) -> FullyConnectedOptionsBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<i8, i8>,
            {
                let (v0,) = self.0;
                FullyConnectedOptionsBuilder((v0, value))
            }

            /// Sets the [`weights_format` field](FullyConnectedOptions#structfield.weights_format) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn weights_format_as_default(
                self,
            ) -> FullyConnectedOptionsBuilder<(T0, ::planus::DefaultValue)> {
                self.weights_format(::planus::DefaultValue)
            }
        }

        impl<T0, T1> FullyConnectedOptionsBuilder<(T0, T1)> {
            /// Setter for the [`keep_num_dims` field](FullyConnectedOptions#structfield.keep_num_dims).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn keep_num_dims<T2>(self, value: T2) -> FullyConnectedOptionsBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsDefault<bool, bool>,
            {
                let (v0, v1) = self.0;
                FullyConnectedOptionsBuilder((v0, v1, value))
            }

            /// Sets the [`keep_num_dims` field](FullyConnectedOptions#structfield.keep_num_dims) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn keep_num_dims_as_default(
                self,
            ) -> FullyConnectedOptionsBuilder<(T0, T1, ::planus::DefaultValue)> {
                self.keep_num_dims(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2> FullyConnectedOptionsBuilder<(T0, T1, T2)> {
            /// Setter for the [`asymmetric_quantize_inputs` field](FullyConnectedOptions#structfield.asymmetric_quantize_inputs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn asymmetric_quantize_inputs<T3>(
                self,
                value: T3,
            ) -> FullyConnectedOptionsBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsDefault<bool, bool>,
            {
                let (v0, v1, v2) = self.0;
                FullyConnectedOptionsBuilder((v0, v1, v2, value))
            }

            /// Sets the [`asymmetric_quantize_inputs` field](FullyConnectedOptions#structfield.asymmetric_quantize_inputs) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn asymmetric_quantize_inputs_as_default(
                self,
            ) -> FullyConnectedOptionsBuilder<(T0, T1, T2, ::planus::DefaultValue)> {
                self.asymmetric_quantize_inputs(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3> FullyConnectedOptionsBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`quantized_bias_type` field](FullyConnectedOptions#structfield.quantized_bias_type).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn quantized_bias_type<T4>(
                self,
                value: T4,
            ) -> FullyConnectedOptionsBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsDefault<i8, i8>,
            {
                let (v0, v1, v2, v3) = self.0;
                FullyConnectedOptionsBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`quantized_bias_type` field](FullyConnectedOptions#structfield.quantized_bias_type) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn quantized_bias_type_as_default(
                self,
            ) -> FullyConnectedOptionsBuilder<(T0, T1, T2, T3, ::planus::DefaultValue)>
            {
                self.quantized_bias_type(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3, T4> FullyConnectedOptionsBuilder<(T0, T1, T2, T3, T4)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [FullyConnectedOptions].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<FullyConnectedOptions>
            where
                Self: ::planus::WriteAsOffset<FullyConnectedOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i8, i8>,
                T2: ::planus::WriteAsDefault<bool, bool>,
                T3: ::planus::WriteAsDefault<bool, bool>,
                T4: ::planus::WriteAsDefault<i8, i8>,
            > ::planus::WriteAs<::planus::Offset<FullyConnectedOptions>>
            for FullyConnectedOptionsBuilder<(T0, T1, T2, T3, T4)>
        {
            type Prepared = ::planus::Offset<FullyConnectedOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<FullyConnectedOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i8, i8>,
                T2: ::planus::WriteAsDefault<bool, bool>,
                T3: ::planus::WriteAsDefault<bool, bool>,
                T4: ::planus::WriteAsDefault<i8, i8>,
            > ::planus::WriteAsOptional<::planus::Offset<FullyConnectedOptions>>
            for FullyConnectedOptionsBuilder<(T0, T1, T2, T3, T4)>
        {
            type Prepared = ::planus::Offset<FullyConnectedOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<FullyConnectedOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsDefault<i8, i8>,
                T2: ::planus::WriteAsDefault<bool, bool>,
                T3: ::planus::WriteAsDefault<bool, bool>,
                T4: ::planus::WriteAsDefault<i8, i8>,
            > ::planus::WriteAsOffset<FullyConnectedOptions>
            for FullyConnectedOptionsBuilder<(T0, T1, T2, T3, T4)>
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<FullyConnectedOptions> {
                let (v0, v1, v2, v3, v4) = &self.0;
                FullyConnectedOptions::create(builder, v0, v1, v2, v3, v4)
            }
        }

        /// Reference to a deserialized [FullyConnectedOptions].
        #[derive(Copy, Clone)]
        pub struct FullyConnectedOptionsRef<'a>(
            #[allow(dead_code)] ::planus::table_reader::Table<'a>,
        );

        impl<'a> FullyConnectedOptionsRef<'a> {
            /// Getter for the [`fused_activation_function` field](FullyConnectedOptions#structfield.fused_activation_function).
            #[inline]
            pub fn fused_activation_function(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(0, "FullyConnectedOptions", "fused_activation_function")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`weights_format` field](FullyConnectedOptions#structfield.weights_format).
            #[inline]
            pub fn weights_format(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(1, "FullyConnectedOptions", "weights_format")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`keep_num_dims` field](FullyConnectedOptions#structfield.keep_num_dims).
            #[inline]
            pub fn keep_num_dims(&self) -> ::planus::Result<bool> {
                ::core::result::Result::Ok(
                    self.0
                        .access(2, "FullyConnectedOptions", "keep_num_dims")?
                        .unwrap_or(false),
                )
            }

            /// Getter for the [`asymmetric_quantize_inputs` field](FullyConnectedOptions#structfield.asymmetric_quantize_inputs).
            #[inline]
            pub fn asymmetric_quantize_inputs(&self) -> ::planus::Result<bool> {
                ::core::result::Result::Ok(
                    self.0
                        .access(3, "FullyConnectedOptions", "asymmetric_quantize_inputs")?
                        .unwrap_or(false),
                )
            }

            /// Getter for the [`quantized_bias_type` field](FullyConnectedOptions#structfield.quantized_bias_type).
            #[inline]
            pub fn quantized_bias_type(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(4, "FullyConnectedOptions", "quantized_bias_type")?
                        .unwrap_or(0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for FullyConnectedOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("FullyConnectedOptionsRef");
                f.field(
                    "fused_activation_function",
                    &self.fused_activation_function(),
                );
                f.field("weights_format", &self.weights_format());
                f.field("keep_num_dims", &self.keep_num_dims());
                f.field(
                    "asymmetric_quantize_inputs",
                    &self.asymmetric_quantize_inputs(),
                );
                f.field("quantized_bias_type", &self.quantized_bias_type());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<FullyConnectedOptionsRef<'a>> for FullyConnectedOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: FullyConnectedOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    fused_activation_function: ::core::convert::TryInto::try_into(
                        value.fused_activation_function()?,
                    )?,
                    weights_format: ::core::convert::TryInto::try_into(value.weights_format()?)?,
                    keep_num_dims: ::core::convert::TryInto::try_into(value.keep_num_dims()?)?,
                    asymmetric_quantize_inputs: ::core::convert::TryInto::try_into(
                        value.asymmetric_quantize_inputs()?,
                    )?,
                    quantized_bias_type: ::core::convert::TryInto::try_into(
                        value.quantized_bias_type()?,
                    )?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for FullyConnectedOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for FullyConnectedOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[FullyConnectedOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<FullyConnectedOptions>>
            for FullyConnectedOptions
        {
            type Value = ::planus::Offset<FullyConnectedOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<FullyConnectedOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for FullyConnectedOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[FullyConnectedOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `SoftmaxOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `SoftmaxOptions` in the file `schema.fbs:57`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub struct SoftmaxOptions {
            /// The field `beta` in the table `SoftmaxOptions`
            pub beta: f32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for SoftmaxOptions {
            fn default() -> Self {
                Self { beta: 0.0 }
            }
        }

        impl SoftmaxOptions {
            /// Creates a [SoftmaxOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> SoftmaxOptionsBuilder<()> {
                SoftmaxOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_beta: impl ::planus::WriteAsDefault<f32, f32>,
            ) -> ::planus::Offset<Self> {
                let prepared_beta = field_beta.prepare(builder, &0.0);

                let mut table_writer: ::planus::table_writer::TableWriter<6> =
                    ::core::default::Default::default();
                if prepared_beta.is_some() {
                    table_writer.write_entry::<f32>(0);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_beta) = prepared_beta {
                            object_writer.write::<_, _, 4>(&prepared_beta);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<SoftmaxOptions>> for SoftmaxOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SoftmaxOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<SoftmaxOptions>> for SoftmaxOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SoftmaxOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<SoftmaxOptions> for SoftmaxOptions {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SoftmaxOptions> {
                SoftmaxOptions::create(builder, self.beta)
            }
        }

        /// Builder for serializing an instance of the [SoftmaxOptions] type.
        ///
        /// Can be created using the [SoftmaxOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct SoftmaxOptionsBuilder<State>(State);

        impl SoftmaxOptionsBuilder<()> {
            /// Setter for the [`beta` field](SoftmaxOptions#structfield.beta).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn beta<T0>(self, value: T0) -> SoftmaxOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<f32, f32>,
            {
                SoftmaxOptionsBuilder((value,))
            }

            /// Sets the [`beta` field](SoftmaxOptions#structfield.beta) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn beta_as_default(self) -> SoftmaxOptionsBuilder<(::planus::DefaultValue,)> {
                self.beta(::planus::DefaultValue)
            }
        }

        impl<T0> SoftmaxOptionsBuilder<(T0,)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [SoftmaxOptions].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<SoftmaxOptions>
            where
                Self: ::planus::WriteAsOffset<SoftmaxOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<T0: ::planus::WriteAsDefault<f32, f32>>
            ::planus::WriteAs<::planus::Offset<SoftmaxOptions>> for SoftmaxOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<SoftmaxOptions>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SoftmaxOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<T0: ::planus::WriteAsDefault<f32, f32>>
            ::planus::WriteAsOptional<::planus::Offset<SoftmaxOptions>>
            for SoftmaxOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<SoftmaxOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SoftmaxOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<T0: ::planus::WriteAsDefault<f32, f32>> ::planus::WriteAsOffset<SoftmaxOptions>
            for SoftmaxOptionsBuilder<(T0,)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SoftmaxOptions> {
                let (v0,) = &self.0;
                SoftmaxOptions::create(builder, v0)
            }
        }

        /// Reference to a deserialized [SoftmaxOptions].
        #[derive(Copy, Clone)]
        pub struct SoftmaxOptionsRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> SoftmaxOptionsRef<'a> {
            /// Getter for the [`beta` field](SoftmaxOptions#structfield.beta).
            #[inline]
            pub fn beta(&self) -> ::planus::Result<f32> {
                ::core::result::Result::Ok(
                    self.0.access(0, "SoftmaxOptions", "beta")?.unwrap_or(0.0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for SoftmaxOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("SoftmaxOptionsRef");
                f.field("beta", &self.beta());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<SoftmaxOptionsRef<'a>> for SoftmaxOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: SoftmaxOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    beta: ::core::convert::TryInto::try_into(value.beta()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for SoftmaxOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for SoftmaxOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[SoftmaxOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<SoftmaxOptions>> for SoftmaxOptions {
            type Value = ::planus::Offset<SoftmaxOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<SoftmaxOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for SoftmaxOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[SoftmaxOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `ReshapeOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `ReshapeOptions` in the file `schema.fbs:61`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct ReshapeOptions {
            /// The field `new_shape` in the table `ReshapeOptions`
            pub new_shape: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for ReshapeOptions {
            fn default() -> Self {
                Self {
                    new_shape: ::core::default::Default::default(),
                }
            }
        }

        impl ReshapeOptions {
            /// Creates a [ReshapeOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> ReshapeOptionsBuilder<()> {
                ReshapeOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_new_shape: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            ) -> ::planus::Offset<Self> {
                let prepared_new_shape = field_new_shape.prepare(builder);

                let mut table_writer: ::planus::table_writer::TableWriter<6> =
                    ::core::default::Default::default();
                if prepared_new_shape.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(0);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_new_shape) = prepared_new_shape
                        {
                            object_writer.write::<_, _, 4>(&prepared_new_shape);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<ReshapeOptions>> for ReshapeOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReshapeOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<ReshapeOptions>> for ReshapeOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<ReshapeOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<ReshapeOptions> for ReshapeOptions {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReshapeOptions> {
                ReshapeOptions::create(builder, &self.new_shape)
            }
        }

        /// Builder for serializing an instance of the [ReshapeOptions] type.
        ///
        /// Can be created using the [ReshapeOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct ReshapeOptionsBuilder<State>(State);

        impl ReshapeOptionsBuilder<()> {
            /// Setter for the [`new_shape` field](ReshapeOptions#structfield.new_shape).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn new_shape<T0>(self, value: T0) -> ReshapeOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                ReshapeOptionsBuilder((value,))
            }

            /// Sets the [`new_shape` field](ReshapeOptions#structfield.new_shape) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn new_shape_as_null(self) -> ReshapeOptionsBuilder<((),)> {
                self.new_shape(())
            }
        }

        impl<T0> ReshapeOptionsBuilder<(T0,)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [ReshapeOptions].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReshapeOptions>
            where
                Self: ::planus::WriteAsOffset<ReshapeOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>>
            ::planus::WriteAs<::planus::Offset<ReshapeOptions>> for ReshapeOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<ReshapeOptions>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReshapeOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>>
            ::planus::WriteAsOptional<::planus::Offset<ReshapeOptions>>
            for ReshapeOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<ReshapeOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<ReshapeOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<T0: ::planus::WriteAsOptional<::planus::Offset<[i32]>>>
            ::planus::WriteAsOffset<ReshapeOptions> for ReshapeOptionsBuilder<(T0,)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<ReshapeOptions> {
                let (v0,) = &self.0;
                ReshapeOptions::create(builder, v0)
            }
        }

        /// Reference to a deserialized [ReshapeOptions].
        #[derive(Copy, Clone)]
        pub struct ReshapeOptionsRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> ReshapeOptionsRef<'a> {
            /// Getter for the [`new_shape` field](ReshapeOptions#structfield.new_shape).
            #[inline]
            pub fn new_shape(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(0, "ReshapeOptions", "new_shape")
            }
        }

        impl<'a> ::core::fmt::Debug for ReshapeOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("ReshapeOptionsRef");
                if let ::core::option::Option::Some(field_new_shape) = self.new_shape().transpose()
                {
                    f.field("new_shape", &field_new_shape);
                }
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<ReshapeOptionsRef<'a>> for ReshapeOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: ReshapeOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    new_shape: if let ::core::option::Option::Some(new_shape) = value.new_shape()? {
                        ::core::option::Option::Some(new_shape.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for ReshapeOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for ReshapeOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[ReshapeOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<ReshapeOptions>> for ReshapeOptions {
            type Value = ::planus::Offset<ReshapeOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<ReshapeOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for ReshapeOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[ReshapeOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `LeakyReluOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `LeakyReluOptions` in the file `schema.fbs:65`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub struct LeakyReluOptions {
            /// The field `alpha` in the table `LeakyReluOptions`
            pub alpha: f32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for LeakyReluOptions {
            fn default() -> Self {
                Self { alpha: 0.0 }
            }
        }

        impl LeakyReluOptions {
            /// Creates a [LeakyReluOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> LeakyReluOptionsBuilder<()> {
                LeakyReluOptionsBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_alpha: impl ::planus::WriteAsDefault<f32, f32>,
            ) -> ::planus::Offset<Self> {
                let prepared_alpha = field_alpha.prepare(builder, &0.0);

                let mut table_writer: ::planus::table_writer::TableWriter<6> =
                    ::core::default::Default::default();
                if prepared_alpha.is_some() {
                    table_writer.write_entry::<f32>(0);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_alpha) = prepared_alpha {
                            object_writer.write::<_, _, 4>(&prepared_alpha);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<LeakyReluOptions>> for LeakyReluOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<LeakyReluOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<LeakyReluOptions>> for LeakyReluOptions {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<LeakyReluOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<LeakyReluOptions> for LeakyReluOptions {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<LeakyReluOptions> {
                LeakyReluOptions::create(builder, self.alpha)
            }
        }

        /// Builder for serializing an instance of the [LeakyReluOptions] type.
        ///
        /// Can be created using the [LeakyReluOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct LeakyReluOptionsBuilder<State>(State);

        impl LeakyReluOptionsBuilder<()> {
            /// Setter for the [`alpha` field](LeakyReluOptions#structfield.alpha).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn alpha<T0>(self, value: T0) -> LeakyReluOptionsBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<f32, f32>,
            {
                LeakyReluOptionsBuilder((value,))
            }

            /// Sets the [`alpha` field](LeakyReluOptions#structfield.alpha) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn alpha_as_default(self) -> LeakyReluOptionsBuilder<(::planus::DefaultValue,)> {
                self.alpha(::planus::DefaultValue)
            }
        }

        impl<T0> LeakyReluOptionsBuilder<(T0,)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [LeakyReluOptions].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<LeakyReluOptions>
            where
                Self: ::planus::WriteAsOffset<LeakyReluOptions>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<T0: ::planus::WriteAsDefault<f32, f32>>
            ::planus::WriteAs<::planus::Offset<LeakyReluOptions>>
            for LeakyReluOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<LeakyReluOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<LeakyReluOptions> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<T0: ::planus::WriteAsDefault<f32, f32>>
            ::planus::WriteAsOptional<::planus::Offset<LeakyReluOptions>>
            for LeakyReluOptionsBuilder<(T0,)>
        {
            type Prepared = ::planus::Offset<LeakyReluOptions>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<LeakyReluOptions>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<T0: ::planus::WriteAsDefault<f32, f32>> ::planus::WriteAsOffset<LeakyReluOptions>
            for LeakyReluOptionsBuilder<(T0,)>
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::Offset<LeakyReluOptions> {
                let (v0,) = &self.0;
                LeakyReluOptions::create(builder, v0)
            }
        }

        /// Reference to a deserialized [LeakyReluOptions].
        #[derive(Copy, Clone)]
        pub struct LeakyReluOptionsRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> LeakyReluOptionsRef<'a> {
            /// Getter for the [`alpha` field](LeakyReluOptions#structfield.alpha).
            #[inline]
            pub fn alpha(&self) -> ::planus::Result<f32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(0, "LeakyReluOptions", "alpha")?
                        .unwrap_or(0.0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for LeakyReluOptionsRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("LeakyReluOptionsRef");
                f.field("alpha", &self.alpha());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<LeakyReluOptionsRef<'a>> for LeakyReluOptions {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: LeakyReluOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    alpha: ::core::convert::TryInto::try_into(value.alpha()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for LeakyReluOptionsRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for LeakyReluOptionsRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[LeakyReluOptionsRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<LeakyReluOptions>> for LeakyReluOptions {
            type Value = ::planus::Offset<LeakyReluOptions>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<LeakyReluOptions>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for LeakyReluOptionsRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[LeakyReluOptionsRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `NotRead` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `NotRead` in the file `schema.fbs:70`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct NotRead {}

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for NotRead {
            fn default() -> Self {
                Self {}
            }
        }

        impl NotRead {
            /// Creates a [NotReadBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> NotReadBuilder<()> {
                NotReadBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(builder: &mut ::planus::Builder) -> ::planus::Offset<Self> {
                let table_writer: ::planus::table_writer::TableWriter<4> =
                    ::core::default::Default::default();
                unsafe {
                    table_writer.finish(builder, |_table_writer| {});
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<NotRead>> for NotRead {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<NotRead> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<NotRead>> for NotRead {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<NotRead>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<NotRead> for NotRead {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<NotRead> {
                NotRead::create(builder)
            }
        }

        /// Builder for serializing an instance of the [NotRead] type.
        ///
        /// Can be created using the [NotRead::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct NotReadBuilder<State>(State);

        impl NotReadBuilder<()> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [NotRead].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<NotRead>
            where
                Self: ::planus::WriteAsOffset<NotRead>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl ::planus::WriteAs<::planus::Offset<NotRead>> for NotReadBuilder<()> {
            type Prepared = ::planus::Offset<NotRead>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<NotRead> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<NotRead>> for NotReadBuilder<()> {
            type Prepared = ::planus::Offset<NotRead>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<NotRead>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<NotRead> for NotReadBuilder<()> {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<NotRead> {
                NotRead::create(builder)
            }
        }

        /// Reference to a deserialized [NotRead].
        #[derive(Copy, Clone)]
        pub struct NotReadRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> NotReadRef<'a> {}

        impl<'a> ::core::fmt::Debug for NotReadRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("NotReadRef");

                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<NotReadRef<'a>> for NotRead {
            type Error = ::planus::Error;

            fn try_from(_value: NotReadRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {})
            }
        }

        impl<'a> ::planus::TableRead<'a> for NotReadRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for NotReadRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location("[NotReadRef]", "get", buffer.offset_from_start)
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<NotRead>> for NotRead {
            type Value = ::planus::Offset<NotRead>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<NotRead>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for NotReadRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[NotReadRef]", "read_as_root", 0)
                })
            }
        }

        /// The union `BuiltinOptions` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Union `BuiltinOptions` in the file `schema.fbs:73`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub enum BuiltinOptions {
            /// The variant `Conv2DOptions` in the union `BuiltinOptions`
            Conv2DOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `DepthwiseConv2DOptions` in the union `BuiltinOptions`
            DepthwiseConv2DOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `ConcatEmbeddingsOptions` in the union `BuiltinOptions`
            ConcatEmbeddingsOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `LSHProjectionOptions` in the union `BuiltinOptions`
            LshProjectionOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `Pool2DOptions` in the union `BuiltinOptions`
            Pool2DOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `SVDFOptions` in the union `BuiltinOptions`
            SvdfOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `RNNOptions` in the union `BuiltinOptions`
            RnnOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant of type `FullyConnectedOptions` in the union `BuiltinOptions`
            FullyConnectedOptions(::planus::alloc::boxed::Box<self::FullyConnectedOptions>),

            /// The variant of type `SoftmaxOptions` in the union `BuiltinOptions`
            SoftmaxOptions(::planus::alloc::boxed::Box<self::SoftmaxOptions>),

            /// The variant `ConcatenationOptions` in the union `BuiltinOptions`
            ConcatenationOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `AddOptions` in the union `BuiltinOptions`
            AddOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `L2NormOptions` in the union `BuiltinOptions`
            L2NormOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `LocalResponseNormalizationOptions` in the union `BuiltinOptions`
            LocalResponseNormalizationOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `LSTMOptions` in the union `BuiltinOptions`
            LstmOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `ResizeBilinearOptions` in the union `BuiltinOptions`
            ResizeBilinearOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `CallOptions` in the union `BuiltinOptions`
            CallOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant of type `ReshapeOptions` in the union `BuiltinOptions`
            ReshapeOptions(::planus::alloc::boxed::Box<self::ReshapeOptions>),

            /// The variant `SkipGramOptions` in the union `BuiltinOptions`
            SkipGramOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `SpaceToDepthOptions` in the union `BuiltinOptions`
            SpaceToDepthOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `EmbeddingLookupSparseOptions` in the union `BuiltinOptions`
            EmbeddingLookupSparseOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `MulOptions` in the union `BuiltinOptions`
            MulOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `PadOptions` in the union `BuiltinOptions`
            PadOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `GatherOptions` in the union `BuiltinOptions`
            GatherOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `BatchToSpaceNDOptions` in the union `BuiltinOptions`
            BatchToSpaceNdOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `SpaceToBatchNDOptions` in the union `BuiltinOptions`
            SpaceToBatchNdOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `TransposeOptions` in the union `BuiltinOptions`
            TransposeOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `ReducerOptions` in the union `BuiltinOptions`
            ReducerOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `SubOptions` in the union `BuiltinOptions`
            SubOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `DivOptions` in the union `BuiltinOptions`
            DivOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `SqueezeOptions` in the union `BuiltinOptions`
            SqueezeOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `SequenceRNNOptions` in the union `BuiltinOptions`
            SequenceRnnOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `StridedSliceOptions` in the union `BuiltinOptions`
            StridedSliceOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `ExpOptions` in the union `BuiltinOptions`
            ExpOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `TopKV2Options` in the union `BuiltinOptions`
            TopKv2Options(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `SplitOptions` in the union `BuiltinOptions`
            SplitOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `LogSoftmaxOptions` in the union `BuiltinOptions`
            LogSoftmaxOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `CastOptions` in the union `BuiltinOptions`
            CastOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `DequantizeOptions` in the union `BuiltinOptions`
            DequantizeOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `MaximumMinimumOptions` in the union `BuiltinOptions`
            MaximumMinimumOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `ArgMaxOptions` in the union `BuiltinOptions`
            ArgMaxOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `LessOptions` in the union `BuiltinOptions`
            LessOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `NegOptions` in the union `BuiltinOptions`
            NegOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `PadV2Options` in the union `BuiltinOptions`
            PadV2Options(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `GreaterOptions` in the union `BuiltinOptions`
            GreaterOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `GreaterEqualOptions` in the union `BuiltinOptions`
            GreaterEqualOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `LessEqualOptions` in the union `BuiltinOptions`
            LessEqualOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `SelectOptions` in the union `BuiltinOptions`
            SelectOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `SliceOptions` in the union `BuiltinOptions`
            SliceOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `TransposeConvOptions` in the union `BuiltinOptions`
            TransposeConvOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `SparseToDenseOptions` in the union `BuiltinOptions`
            SparseToDenseOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `TileOptions` in the union `BuiltinOptions`
            TileOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `ExpandDimsOptions` in the union `BuiltinOptions`
            ExpandDimsOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `EqualOptions` in the union `BuiltinOptions`
            EqualOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `NotEqualOptions` in the union `BuiltinOptions`
            NotEqualOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `ShapeOptions` in the union `BuiltinOptions`
            ShapeOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `PowOptions` in the union `BuiltinOptions`
            PowOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `ArgMinOptions` in the union `BuiltinOptions`
            ArgMinOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `FakeQuantOptions` in the union `BuiltinOptions`
            FakeQuantOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `PackOptions` in the union `BuiltinOptions`
            PackOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `LogicalOrOptions` in the union `BuiltinOptions`
            LogicalOrOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `OneHotOptions` in the union `BuiltinOptions`
            OneHotOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `LogicalAndOptions` in the union `BuiltinOptions`
            LogicalAndOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `LogicalNotOptions` in the union `BuiltinOptions`
            LogicalNotOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `UnpackOptions` in the union `BuiltinOptions`
            UnpackOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `FloorDivOptions` in the union `BuiltinOptions`
            FloorDivOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `SquareOptions` in the union `BuiltinOptions`
            SquareOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `ZerosLikeOptions` in the union `BuiltinOptions`
            ZerosLikeOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `FillOptions` in the union `BuiltinOptions`
            FillOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `BidirectionalSequenceLSTMOptions` in the union `BuiltinOptions`
            BidirectionalSequenceLstmOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `BidirectionalSequenceRNNOptions` in the union `BuiltinOptions`
            BidirectionalSequenceRnnOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `UnidirectionalSequenceLSTMOptions` in the union `BuiltinOptions`
            UnidirectionalSequenceLstmOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `FloorModOptions` in the union `BuiltinOptions`
            FloorModOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `RangeOptions` in the union `BuiltinOptions`
            RangeOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant `ResizeNearestNeighborOptions` in the union `BuiltinOptions`
            ResizeNearestNeighborOptions(::planus::alloc::boxed::Box<self::NotRead>),

            /// The variant of type `LeakyReluOptions` in the union `BuiltinOptions`
            LeakyReluOptions(::planus::alloc::boxed::Box<self::LeakyReluOptions>),
        }

        impl BuiltinOptions {
            /// Creates a [BuiltinOptionsBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> BuiltinOptionsBuilder<::planus::Uninitialized> {
                BuiltinOptionsBuilder(::planus::Uninitialized)
            }

            #[inline]
            pub fn create_conv2_d_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(1, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_depthwise_conv2_d_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(2, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_concat_embeddings_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(3, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_lsh_projection_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(4, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_pool2_d_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(5, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_svdf_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(6, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_rnn_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(7, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_fully_connected_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::FullyConnectedOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(8, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_softmax_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::SoftmaxOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(9, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_concatenation_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(10, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_add_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(11, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_l2_norm_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(12, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_local_response_normalization_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(13, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_lstm_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(14, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_resize_bilinear_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(15, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_call_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(16, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_reshape_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::ReshapeOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(17, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_skip_gram_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(18, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_space_to_depth_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(19, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_embedding_lookup_sparse_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(20, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_mul_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(21, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_pad_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(22, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_gather_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(23, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_batch_to_space_nd_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(24, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_space_to_batch_nd_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(25, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_transpose_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(26, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_reducer_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(27, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_sub_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(28, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_div_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(29, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_squeeze_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(30, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_sequence_rnn_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(31, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_strided_slice_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(32, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_exp_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(33, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_top_kv2_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(34, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_split_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(35, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_log_softmax_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(36, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_cast_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(37, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_dequantize_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(38, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_maximum_minimum_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(39, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_arg_max_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(40, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_less_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(41, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_neg_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(42, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_pad_v2_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(43, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_greater_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(44, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_greater_equal_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(45, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_less_equal_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(46, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_select_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(47, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_slice_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(48, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_transpose_conv_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(49, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_sparse_to_dense_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(50, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_tile_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(51, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_expand_dims_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(52, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_equal_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(53, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_not_equal_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(54, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_shape_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(55, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_pow_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(56, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_arg_min_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(57, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_fake_quant_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(58, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_pack_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(59, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_logical_or_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(60, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_one_hot_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(61, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_logical_and_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(62, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_logical_not_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(63, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_unpack_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(64, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_floor_div_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(65, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_square_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(66, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_zeros_like_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(67, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_fill_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(68, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_bidirectional_sequence_lstm_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(69, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_bidirectional_sequence_rnn_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(70, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_unidirectional_sequence_lstm_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(71, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_floor_mod_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(72, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_range_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(73, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_resize_nearest_neighbor_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::NotRead>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(74, value.prepare(builder).downcast())
            }

            #[inline]
            pub fn create_leaky_relu_options(
                builder: &mut ::planus::Builder,
                value: impl ::planus::WriteAsOffset<self::LeakyReluOptions>,
            ) -> ::planus::UnionOffset<Self> {
                ::planus::UnionOffset::new(75, value.prepare(builder).downcast())
            }
        }

        impl ::planus::WriteAsUnion<BuiltinOptions> for BuiltinOptions {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::UnionOffset<Self> {
                match self {
                    Self::Conv2DOptions(value) => Self::create_conv2_d_options(builder, value),
                    Self::DepthwiseConv2DOptions(value) => {
                        Self::create_depthwise_conv2_d_options(builder, value)
                    }
                    Self::ConcatEmbeddingsOptions(value) => {
                        Self::create_concat_embeddings_options(builder, value)
                    }
                    Self::LshProjectionOptions(value) => {
                        Self::create_lsh_projection_options(builder, value)
                    }
                    Self::Pool2DOptions(value) => Self::create_pool2_d_options(builder, value),
                    Self::SvdfOptions(value) => Self::create_svdf_options(builder, value),
                    Self::RnnOptions(value) => Self::create_rnn_options(builder, value),
                    Self::FullyConnectedOptions(value) => {
                        Self::create_fully_connected_options(builder, value)
                    }
                    Self::SoftmaxOptions(value) => Self::create_softmax_options(builder, value),
                    Self::ConcatenationOptions(value) => {
                        Self::create_concatenation_options(builder, value)
                    }
                    Self::AddOptions(value) => Self::create_add_options(builder, value),
                    Self::L2NormOptions(value) => Self::create_l2_norm_options(builder, value),
                    Self::LocalResponseNormalizationOptions(value) => {
                        Self::create_local_response_normalization_options(builder, value)
                    }
                    Self::LstmOptions(value) => Self::create_lstm_options(builder, value),
                    Self::ResizeBilinearOptions(value) => {
                        Self::create_resize_bilinear_options(builder, value)
                    }
                    Self::CallOptions(value) => Self::create_call_options(builder, value),
                    Self::ReshapeOptions(value) => Self::create_reshape_options(builder, value),
                    Self::SkipGramOptions(value) => Self::create_skip_gram_options(builder, value),
                    Self::SpaceToDepthOptions(value) => {
                        Self::create_space_to_depth_options(builder, value)
                    }
                    Self::EmbeddingLookupSparseOptions(value) => {
                        Self::create_embedding_lookup_sparse_options(builder, value)
                    }
                    Self::MulOptions(value) => Self::create_mul_options(builder, value),
                    Self::PadOptions(value) => Self::create_pad_options(builder, value),
                    Self::GatherOptions(value) => Self::create_gather_options(builder, value),
                    Self::BatchToSpaceNdOptions(value) => {
                        Self::create_batch_to_space_nd_options(builder, value)
                    }
                    Self::SpaceToBatchNdOptions(value) => {
                        Self::create_space_to_batch_nd_options(builder, value)
                    }
                    Self::TransposeOptions(value) => Self::create_transpose_options(builder, value),
                    Self::ReducerOptions(value) => Self::create_reducer_options(builder, value),
                    Self::SubOptions(value) => Self::create_sub_options(builder, value),
                    Self::DivOptions(value) => Self::create_div_options(builder, value),
                    Self::SqueezeOptions(value) => Self::create_squeeze_options(builder, value),
                    Self::SequenceRnnOptions(value) => {
                        Self::create_sequence_rnn_options(builder, value)
                    }
                    Self::StridedSliceOptions(value) => {
                        Self::create_strided_slice_options(builder, value)
                    }
                    Self::ExpOptions(value) => Self::create_exp_options(builder, value),
                    Self::TopKv2Options(value) => Self::create_top_kv2_options(builder, value),
                    Self::SplitOptions(value) => Self::create_split_options(builder, value),
                    Self::LogSoftmaxOptions(value) => {
                        Self::create_log_softmax_options(builder, value)
                    }
                    Self::CastOptions(value) => Self::create_cast_options(builder, value),
                    Self::DequantizeOptions(value) => {
                        Self::create_dequantize_options(builder, value)
                    }
                    Self::MaximumMinimumOptions(value) => {
                        Self::create_maximum_minimum_options(builder, value)
                    }
                    Self::ArgMaxOptions(value) => Self::create_arg_max_options(builder, value),
                    Self::LessOptions(value) => Self::create_less_options(builder, value),
                    Self::NegOptions(value) => Self::create_neg_options(builder, value),
                    Self::PadV2Options(value) => Self::create_pad_v2_options(builder, value),
                    Self::GreaterOptions(value) => Self::create_greater_options(builder, value),
                    Self::GreaterEqualOptions(value) => {
                        Self::create_greater_equal_options(builder, value)
                    }
                    Self::LessEqualOptions(value) => {
                        Self::create_less_equal_options(builder, value)
                    }
                    Self::SelectOptions(value) => Self::create_select_options(builder, value),
                    Self::SliceOptions(value) => Self::create_slice_options(builder, value),
                    Self::TransposeConvOptions(value) => {
                        Self::create_transpose_conv_options(builder, value)
                    }
                    Self::SparseToDenseOptions(value) => {
                        Self::create_sparse_to_dense_options(builder, value)
                    }
                    Self::TileOptions(value) => Self::create_tile_options(builder, value),
                    Self::ExpandDimsOptions(value) => {
                        Self::create_expand_dims_options(builder, value)
                    }
                    Self::EqualOptions(value) => Self::create_equal_options(builder, value),
                    Self::NotEqualOptions(value) => Self::create_not_equal_options(builder, value),
                    Self::ShapeOptions(value) => Self::create_shape_options(builder, value),
                    Self::PowOptions(value) => Self::create_pow_options(builder, value),
                    Self::ArgMinOptions(value) => Self::create_arg_min_options(builder, value),
                    Self::FakeQuantOptions(value) => {
                        Self::create_fake_quant_options(builder, value)
                    }
                    Self::PackOptions(value) => Self::create_pack_options(builder, value),
                    Self::LogicalOrOptions(value) => {
                        Self::create_logical_or_options(builder, value)
                    }
                    Self::OneHotOptions(value) => Self::create_one_hot_options(builder, value),
                    Self::LogicalAndOptions(value) => {
                        Self::create_logical_and_options(builder, value)
                    }
                    Self::LogicalNotOptions(value) => {
                        Self::create_logical_not_options(builder, value)
                    }
                    Self::UnpackOptions(value) => Self::create_unpack_options(builder, value),
                    Self::FloorDivOptions(value) => Self::create_floor_div_options(builder, value),
                    Self::SquareOptions(value) => Self::create_square_options(builder, value),
                    Self::ZerosLikeOptions(value) => {
                        Self::create_zeros_like_options(builder, value)
                    }
                    Self::FillOptions(value) => Self::create_fill_options(builder, value),
                    Self::BidirectionalSequenceLstmOptions(value) => {
                        Self::create_bidirectional_sequence_lstm_options(builder, value)
                    }
                    Self::BidirectionalSequenceRnnOptions(value) => {
                        Self::create_bidirectional_sequence_rnn_options(builder, value)
                    }
                    Self::UnidirectionalSequenceLstmOptions(value) => {
                        Self::create_unidirectional_sequence_lstm_options(builder, value)
                    }
                    Self::FloorModOptions(value) => Self::create_floor_mod_options(builder, value),
                    Self::RangeOptions(value) => Self::create_range_options(builder, value),
                    Self::ResizeNearestNeighborOptions(value) => {
                        Self::create_resize_nearest_neighbor_options(builder, value)
                    }
                    Self::LeakyReluOptions(value) => {
                        Self::create_leaky_relu_options(builder, value)
                    }
                }
            }
        }

        impl ::planus::WriteAsOptionalUnion<BuiltinOptions> for BuiltinOptions {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<Self>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }

        /// Builder for serializing an instance of the [BuiltinOptions] type.
        ///
        /// Can be created using the [BuiltinOptions::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct BuiltinOptionsBuilder<T>(T);

        impl BuiltinOptionsBuilder<::planus::Uninitialized> {
            /// Creates an instance of the [`Conv2DOptions` variant](BuiltinOptions#variant.Conv2DOptions).
            #[inline]
            pub fn conv2_d_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<1, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`DepthwiseConv2DOptions` variant](BuiltinOptions#variant.DepthwiseConv2DOptions).
            #[inline]
            pub fn depthwise_conv2_d_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<2, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ConcatEmbeddingsOptions` variant](BuiltinOptions#variant.ConcatEmbeddingsOptions).
            #[inline]
            pub fn concat_embeddings_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<3, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LSHProjectionOptions` variant](BuiltinOptions#variant.LshProjectionOptions).
            #[inline]
            pub fn lsh_projection_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<4, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`Pool2DOptions` variant](BuiltinOptions#variant.Pool2DOptions).
            #[inline]
            pub fn pool2_d_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<5, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SVDFOptions` variant](BuiltinOptions#variant.SvdfOptions).
            #[inline]
            pub fn svdf_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<6, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`RNNOptions` variant](BuiltinOptions#variant.RnnOptions).
            #[inline]
            pub fn rnn_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<7, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`FullyConnectedOptions` variant](BuiltinOptions#variant.FullyConnectedOptions).
            #[inline]
            pub fn fully_connected_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<8, T>>
            where
                T: ::planus::WriteAsOffset<self::FullyConnectedOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SoftmaxOptions` variant](BuiltinOptions#variant.SoftmaxOptions).
            #[inline]
            pub fn softmax_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<9, T>>
            where
                T: ::planus::WriteAsOffset<self::SoftmaxOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ConcatenationOptions` variant](BuiltinOptions#variant.ConcatenationOptions).
            #[inline]
            pub fn concatenation_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<10, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`AddOptions` variant](BuiltinOptions#variant.AddOptions).
            #[inline]
            pub fn add_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<11, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`L2NormOptions` variant](BuiltinOptions#variant.L2NormOptions).
            #[inline]
            pub fn l2_norm_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<12, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LocalResponseNormalizationOptions` variant](BuiltinOptions#variant.LocalResponseNormalizationOptions).
            #[inline]
            pub fn local_response_normalization_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<13, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LSTMOptions` variant](BuiltinOptions#variant.LstmOptions).
            #[inline]
            pub fn lstm_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<14, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ResizeBilinearOptions` variant](BuiltinOptions#variant.ResizeBilinearOptions).
            #[inline]
            pub fn resize_bilinear_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<15, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`CallOptions` variant](BuiltinOptions#variant.CallOptions).
            #[inline]
            pub fn call_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<16, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ReshapeOptions` variant](BuiltinOptions#variant.ReshapeOptions).
            #[inline]
            pub fn reshape_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<17, T>>
            where
                T: ::planus::WriteAsOffset<self::ReshapeOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SkipGramOptions` variant](BuiltinOptions#variant.SkipGramOptions).
            #[inline]
            pub fn skip_gram_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<18, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SpaceToDepthOptions` variant](BuiltinOptions#variant.SpaceToDepthOptions).
            #[inline]
            pub fn space_to_depth_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<19, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`EmbeddingLookupSparseOptions` variant](BuiltinOptions#variant.EmbeddingLookupSparseOptions).
            #[inline]
            pub fn embedding_lookup_sparse_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<20, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`MulOptions` variant](BuiltinOptions#variant.MulOptions).
            #[inline]
            pub fn mul_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<21, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`PadOptions` variant](BuiltinOptions#variant.PadOptions).
            #[inline]
            pub fn pad_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<22, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`GatherOptions` variant](BuiltinOptions#variant.GatherOptions).
            #[inline]
            pub fn gather_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<23, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`BatchToSpaceNDOptions` variant](BuiltinOptions#variant.BatchToSpaceNdOptions).
            #[inline]
            pub fn batch_to_space_nd_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<24, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SpaceToBatchNDOptions` variant](BuiltinOptions#variant.SpaceToBatchNdOptions).
            #[inline]
            pub fn space_to_batch_nd_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<25, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`TransposeOptions` variant](BuiltinOptions#variant.TransposeOptions).
            #[inline]
            pub fn transpose_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<26, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ReducerOptions` variant](BuiltinOptions#variant.ReducerOptions).
            #[inline]
            pub fn reducer_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<27, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SubOptions` variant](BuiltinOptions#variant.SubOptions).
            #[inline]
            pub fn sub_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<28, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`DivOptions` variant](BuiltinOptions#variant.DivOptions).
            #[inline]
            pub fn div_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<29, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SqueezeOptions` variant](BuiltinOptions#variant.SqueezeOptions).
            #[inline]
            pub fn squeeze_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<30, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SequenceRNNOptions` variant](BuiltinOptions#variant.SequenceRnnOptions).
            #[inline]
            pub fn sequence_rnn_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<31, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`StridedSliceOptions` variant](BuiltinOptions#variant.StridedSliceOptions).
            #[inline]
            pub fn strided_slice_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<32, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ExpOptions` variant](BuiltinOptions#variant.ExpOptions).
            #[inline]
            pub fn exp_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<33, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`TopKV2Options` variant](BuiltinOptions#variant.TopKv2Options).
            #[inline]
            pub fn top_kv2_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<34, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SplitOptions` variant](BuiltinOptions#variant.SplitOptions).
            #[inline]
            pub fn split_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<35, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LogSoftmaxOptions` variant](BuiltinOptions#variant.LogSoftmaxOptions).
            #[inline]
            pub fn log_softmax_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<36, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`CastOptions` variant](BuiltinOptions#variant.CastOptions).
            #[inline]
            pub fn cast_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<37, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`DequantizeOptions` variant](BuiltinOptions#variant.DequantizeOptions).
            #[inline]
            pub fn dequantize_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<38, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`MaximumMinimumOptions` variant](BuiltinOptions#variant.MaximumMinimumOptions).
            #[inline]
            pub fn maximum_minimum_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<39, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ArgMaxOptions` variant](BuiltinOptions#variant.ArgMaxOptions).
            #[inline]
            pub fn arg_max_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<40, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LessOptions` variant](BuiltinOptions#variant.LessOptions).
            #[inline]
            pub fn less_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<41, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`NegOptions` variant](BuiltinOptions#variant.NegOptions).
            #[inline]
            pub fn neg_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<42, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`PadV2Options` variant](BuiltinOptions#variant.PadV2Options).
            #[inline]
            pub fn pad_v2_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<43, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`GreaterOptions` variant](BuiltinOptions#variant.GreaterOptions).
            #[inline]
            pub fn greater_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<44, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`GreaterEqualOptions` variant](BuiltinOptions#variant.GreaterEqualOptions).
            #[inline]
            pub fn greater_equal_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<45, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LessEqualOptions` variant](BuiltinOptions#variant.LessEqualOptions).
            #[inline]
            pub fn less_equal_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<46, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SelectOptions` variant](BuiltinOptions#variant.SelectOptions).
            #[inline]
            pub fn select_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<47, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SliceOptions` variant](BuiltinOptions#variant.SliceOptions).
            #[inline]
            pub fn slice_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<48, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`TransposeConvOptions` variant](BuiltinOptions#variant.TransposeConvOptions).
            #[inline]
            pub fn transpose_conv_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<49, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SparseToDenseOptions` variant](BuiltinOptions#variant.SparseToDenseOptions).
            #[inline]
            pub fn sparse_to_dense_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<50, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`TileOptions` variant](BuiltinOptions#variant.TileOptions).
            #[inline]
            pub fn tile_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<51, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ExpandDimsOptions` variant](BuiltinOptions#variant.ExpandDimsOptions).
            #[inline]
            pub fn expand_dims_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<52, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`EqualOptions` variant](BuiltinOptions#variant.EqualOptions).
            #[inline]
            pub fn equal_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<53, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`NotEqualOptions` variant](BuiltinOptions#variant.NotEqualOptions).
            #[inline]
            pub fn not_equal_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<54, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ShapeOptions` variant](BuiltinOptions#variant.ShapeOptions).
            #[inline]
            pub fn shape_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<55, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`PowOptions` variant](BuiltinOptions#variant.PowOptions).
            #[inline]
            pub fn pow_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<56, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ArgMinOptions` variant](BuiltinOptions#variant.ArgMinOptions).
            #[inline]
            pub fn arg_min_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<57, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`FakeQuantOptions` variant](BuiltinOptions#variant.FakeQuantOptions).
            #[inline]
            pub fn fake_quant_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<58, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`PackOptions` variant](BuiltinOptions#variant.PackOptions).
            #[inline]
            pub fn pack_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<59, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LogicalOrOptions` variant](BuiltinOptions#variant.LogicalOrOptions).
            #[inline]
            pub fn logical_or_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<60, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`OneHotOptions` variant](BuiltinOptions#variant.OneHotOptions).
            #[inline]
            pub fn one_hot_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<61, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LogicalAndOptions` variant](BuiltinOptions#variant.LogicalAndOptions).
            #[inline]
            pub fn logical_and_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<62, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LogicalNotOptions` variant](BuiltinOptions#variant.LogicalNotOptions).
            #[inline]
            pub fn logical_not_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<63, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`UnpackOptions` variant](BuiltinOptions#variant.UnpackOptions).
            #[inline]
            pub fn unpack_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<64, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`FloorDivOptions` variant](BuiltinOptions#variant.FloorDivOptions).
            #[inline]
            pub fn floor_div_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<65, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`SquareOptions` variant](BuiltinOptions#variant.SquareOptions).
            #[inline]
            pub fn square_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<66, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ZerosLikeOptions` variant](BuiltinOptions#variant.ZerosLikeOptions).
            #[inline]
            pub fn zeros_like_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<67, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`FillOptions` variant](BuiltinOptions#variant.FillOptions).
            #[inline]
            pub fn fill_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<68, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`BidirectionalSequenceLSTMOptions` variant](BuiltinOptions#variant.BidirectionalSequenceLstmOptions).
            #[inline]
            pub fn bidirectional_sequence_lstm_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<69, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`BidirectionalSequenceRNNOptions` variant](BuiltinOptions#variant.BidirectionalSequenceRnnOptions).
            #[inline]
            pub fn bidirectional_sequence_rnn_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<70, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`UnidirectionalSequenceLSTMOptions` variant](BuiltinOptions#variant.UnidirectionalSequenceLstmOptions).
            #[inline]
            pub fn unidirectional_sequence_lstm_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<71, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`FloorModOptions` variant](BuiltinOptions#variant.FloorModOptions).
            #[inline]
            pub fn floor_mod_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<72, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`RangeOptions` variant](BuiltinOptions#variant.RangeOptions).
            #[inline]
            pub fn range_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<73, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`ResizeNearestNeighborOptions` variant](BuiltinOptions#variant.ResizeNearestNeighborOptions).
            #[inline]
            pub fn resize_nearest_neighbor_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<74, T>>
            where
                T: ::planus::WriteAsOffset<self::NotRead>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }

            /// Creates an instance of the [`LeakyReluOptions` variant](BuiltinOptions#variant.LeakyReluOptions).
            #[inline]
            pub fn leaky_relu_options<T>(
                self,
                value: T,
            ) -> BuiltinOptionsBuilder<::planus::Initialized<75, T>>
            where
                T: ::planus::WriteAsOffset<self::LeakyReluOptions>,
            {
                BuiltinOptionsBuilder(::planus::Initialized(value))
            }
        }

        impl<const N: u8, T> BuiltinOptionsBuilder<::planus::Initialized<N, T>> {
            /// Finish writing the builder to get an [UnionOffset](::planus::UnionOffset) to a serialized [BuiltinOptions].
            #[inline]
            pub fn finish(
                self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions>
            where
                Self: ::planus::WriteAsUnion<BuiltinOptions>,
            {
                ::planus::WriteAsUnion::prepare(&self, builder)
            }
        }

        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<1, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(1, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<1, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<2, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(2, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<2, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<3, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(3, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<3, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<4, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(4, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<4, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<5, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(5, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<5, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<6, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(6, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<6, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<7, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(7, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<7, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<8, T>>
        where
            T: ::planus::WriteAsOffset<self::FullyConnectedOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(8, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<8, T>>
        where
            T: ::planus::WriteAsOffset<self::FullyConnectedOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<9, T>>
        where
            T: ::planus::WriteAsOffset<self::SoftmaxOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(9, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<9, T>>
        where
            T: ::planus::WriteAsOffset<self::SoftmaxOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<10, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(10, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<10, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<11, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(11, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<11, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<12, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(12, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<12, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<13, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(13, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<13, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<14, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(14, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<14, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<15, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(15, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<15, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<16, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(16, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<16, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<17, T>>
        where
            T: ::planus::WriteAsOffset<self::ReshapeOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(17, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<17, T>>
        where
            T: ::planus::WriteAsOffset<self::ReshapeOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<18, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(18, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<18, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<19, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(19, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<19, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<20, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(20, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<20, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<21, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(21, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<21, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<22, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(22, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<22, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<23, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(23, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<23, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<24, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(24, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<24, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<25, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(25, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<25, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<26, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(26, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<26, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<27, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(27, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<27, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<28, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(28, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<28, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<29, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(29, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<29, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<30, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(30, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<30, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<31, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(31, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<31, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<32, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(32, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<32, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<33, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(33, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<33, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<34, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(34, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<34, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<35, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(35, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<35, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<36, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(36, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<36, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<37, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(37, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<37, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<38, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(38, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<38, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<39, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(39, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<39, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<40, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(40, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<40, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<41, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(41, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<41, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<42, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(42, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<42, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<43, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(43, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<43, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<44, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(44, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<44, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<45, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(45, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<45, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<46, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(46, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<46, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<47, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(47, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<47, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<48, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(48, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<48, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<49, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(49, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<49, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<50, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(50, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<50, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<51, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(51, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<51, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<52, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(52, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<52, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<53, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(53, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<53, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<54, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(54, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<54, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<55, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(55, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<55, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<56, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(56, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<56, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<57, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(57, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<57, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<58, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(58, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<58, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<59, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(59, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<59, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<60, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(60, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<60, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<61, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(61, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<61, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<62, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(62, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<62, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<63, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(63, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<63, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<64, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(64, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<64, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<65, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(65, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<65, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<66, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(66, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<66, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<67, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(67, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<67, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<68, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(68, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<68, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<69, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(69, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<69, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<70, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(70, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<70, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<71, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(71, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<71, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<72, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(72, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<72, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<73, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(73, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<73, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<74, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(74, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<74, T>>
        where
            T: ::planus::WriteAsOffset<self::NotRead>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }
        impl<T> ::planus::WriteAsUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<75, T>>
        where
            T: ::planus::WriteAsOffset<self::LeakyReluOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::planus::UnionOffset<BuiltinOptions> {
                ::planus::UnionOffset::new(75, (self.0).0.prepare(builder).downcast())
            }
        }

        impl<T> ::planus::WriteAsOptionalUnion<BuiltinOptions>
            for BuiltinOptionsBuilder<::planus::Initialized<75, T>>
        where
            T: ::planus::WriteAsOffset<self::LeakyReluOptions>,
        {
            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::UnionOffset<BuiltinOptions>> {
                ::core::option::Option::Some(::planus::WriteAsUnion::prepare(self, builder))
            }
        }

        /// Reference to a deserialized [BuiltinOptions].
        #[derive(Copy, Clone, Debug)]
        pub enum BuiltinOptionsRef<'a> {
            Conv2DOptions(self::NotReadRef<'a>),
            DepthwiseConv2DOptions(self::NotReadRef<'a>),
            ConcatEmbeddingsOptions(self::NotReadRef<'a>),
            LshProjectionOptions(self::NotReadRef<'a>),
            Pool2DOptions(self::NotReadRef<'a>),
            SvdfOptions(self::NotReadRef<'a>),
            RnnOptions(self::NotReadRef<'a>),
            FullyConnectedOptions(self::FullyConnectedOptionsRef<'a>),
            SoftmaxOptions(self::SoftmaxOptionsRef<'a>),
            ConcatenationOptions(self::NotReadRef<'a>),
            AddOptions(self::NotReadRef<'a>),
            L2NormOptions(self::NotReadRef<'a>),
            LocalResponseNormalizationOptions(self::NotReadRef<'a>),
            LstmOptions(self::NotReadRef<'a>),
            ResizeBilinearOptions(self::NotReadRef<'a>),
            CallOptions(self::NotReadRef<'a>),
            ReshapeOptions(self::ReshapeOptionsRef<'a>),
            SkipGramOptions(self::NotReadRef<'a>),
            SpaceToDepthOptions(self::NotReadRef<'a>),
            EmbeddingLookupSparseOptions(self::NotReadRef<'a>),
            MulOptions(self::NotReadRef<'a>),
            PadOptions(self::NotReadRef<'a>),
            GatherOptions(self::NotReadRef<'a>),
            BatchToSpaceNdOptions(self::NotReadRef<'a>),
            SpaceToBatchNdOptions(self::NotReadRef<'a>),
            TransposeOptions(self::NotReadRef<'a>),
            ReducerOptions(self::NotReadRef<'a>),
            SubOptions(self::NotReadRef<'a>),
            DivOptions(self::NotReadRef<'a>),
            SqueezeOptions(self::NotReadRef<'a>),
            SequenceRnnOptions(self::NotReadRef<'a>),
            StridedSliceOptions(self::NotReadRef<'a>),
            ExpOptions(self::NotReadRef<'a>),
            TopKv2Options(self::NotReadRef<'a>),
            SplitOptions(self::NotReadRef<'a>),
            LogSoftmaxOptions(self::NotReadRef<'a>),
            CastOptions(self::NotReadRef<'a>),
            DequantizeOptions(self::NotReadRef<'a>),
            MaximumMinimumOptions(self::NotReadRef<'a>),
            ArgMaxOptions(self::NotReadRef<'a>),
            LessOptions(self::NotReadRef<'a>),
            NegOptions(self::NotReadRef<'a>),
            PadV2Options(self::NotReadRef<'a>),
            GreaterOptions(self::NotReadRef<'a>),
            GreaterEqualOptions(self::NotReadRef<'a>),
            LessEqualOptions(self::NotReadRef<'a>),
            SelectOptions(self::NotReadRef<'a>),
            SliceOptions(self::NotReadRef<'a>),
            TransposeConvOptions(self::NotReadRef<'a>),
            SparseToDenseOptions(self::NotReadRef<'a>),
            TileOptions(self::NotReadRef<'a>),
            ExpandDimsOptions(self::NotReadRef<'a>),
            EqualOptions(self::NotReadRef<'a>),
            NotEqualOptions(self::NotReadRef<'a>),
            ShapeOptions(self::NotReadRef<'a>),
            PowOptions(self::NotReadRef<'a>),
            ArgMinOptions(self::NotReadRef<'a>),
            FakeQuantOptions(self::NotReadRef<'a>),
            PackOptions(self::NotReadRef<'a>),
            LogicalOrOptions(self::NotReadRef<'a>),
            OneHotOptions(self::NotReadRef<'a>),
            LogicalAndOptions(self::NotReadRef<'a>),
            LogicalNotOptions(self::NotReadRef<'a>),
            UnpackOptions(self::NotReadRef<'a>),
            FloorDivOptions(self::NotReadRef<'a>),
            SquareOptions(self::NotReadRef<'a>),
            ZerosLikeOptions(self::NotReadRef<'a>),
            FillOptions(self::NotReadRef<'a>),
            BidirectionalSequenceLstmOptions(self::NotReadRef<'a>),
            BidirectionalSequenceRnnOptions(self::NotReadRef<'a>),
            UnidirectionalSequenceLstmOptions(self::NotReadRef<'a>),
            FloorModOptions(self::NotReadRef<'a>),
            RangeOptions(self::NotReadRef<'a>),
            ResizeNearestNeighborOptions(self::NotReadRef<'a>),
            LeakyReluOptions(self::LeakyReluOptionsRef<'a>),
        }

        impl<'a> ::core::convert::TryFrom<BuiltinOptionsRef<'a>> for BuiltinOptions {
            type Error = ::planus::Error;

            fn try_from(value: BuiltinOptionsRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(match value {
                    BuiltinOptionsRef::Conv2DOptions(value) => {
                        Self::Conv2DOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::DepthwiseConv2DOptions(value) => {
                        Self::DepthwiseConv2DOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ConcatEmbeddingsOptions(value) => {
                        Self::ConcatEmbeddingsOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LshProjectionOptions(value) => {
                        Self::LshProjectionOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::Pool2DOptions(value) => {
                        Self::Pool2DOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SvdfOptions(value) => {
                        Self::SvdfOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::RnnOptions(value) => {
                        Self::RnnOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::FullyConnectedOptions(value) => {
                        Self::FullyConnectedOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SoftmaxOptions(value) => {
                        Self::SoftmaxOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ConcatenationOptions(value) => {
                        Self::ConcatenationOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::AddOptions(value) => {
                        Self::AddOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::L2NormOptions(value) => {
                        Self::L2NormOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LocalResponseNormalizationOptions(value) => {
                        Self::LocalResponseNormalizationOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LstmOptions(value) => {
                        Self::LstmOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ResizeBilinearOptions(value) => {
                        Self::ResizeBilinearOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::CallOptions(value) => {
                        Self::CallOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ReshapeOptions(value) => {
                        Self::ReshapeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SkipGramOptions(value) => {
                        Self::SkipGramOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SpaceToDepthOptions(value) => {
                        Self::SpaceToDepthOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::EmbeddingLookupSparseOptions(value) => {
                        Self::EmbeddingLookupSparseOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::MulOptions(value) => {
                        Self::MulOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::PadOptions(value) => {
                        Self::PadOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::GatherOptions(value) => {
                        Self::GatherOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::BatchToSpaceNdOptions(value) => {
                        Self::BatchToSpaceNdOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SpaceToBatchNdOptions(value) => {
                        Self::SpaceToBatchNdOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::TransposeOptions(value) => {
                        Self::TransposeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ReducerOptions(value) => {
                        Self::ReducerOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SubOptions(value) => {
                        Self::SubOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::DivOptions(value) => {
                        Self::DivOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SqueezeOptions(value) => {
                        Self::SqueezeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SequenceRnnOptions(value) => {
                        Self::SequenceRnnOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::StridedSliceOptions(value) => {
                        Self::StridedSliceOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ExpOptions(value) => {
                        Self::ExpOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::TopKv2Options(value) => {
                        Self::TopKv2Options(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SplitOptions(value) => {
                        Self::SplitOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LogSoftmaxOptions(value) => {
                        Self::LogSoftmaxOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::CastOptions(value) => {
                        Self::CastOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::DequantizeOptions(value) => {
                        Self::DequantizeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::MaximumMinimumOptions(value) => {
                        Self::MaximumMinimumOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ArgMaxOptions(value) => {
                        Self::ArgMaxOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LessOptions(value) => {
                        Self::LessOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::NegOptions(value) => {
                        Self::NegOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::PadV2Options(value) => {
                        Self::PadV2Options(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::GreaterOptions(value) => {
                        Self::GreaterOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::GreaterEqualOptions(value) => {
                        Self::GreaterEqualOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LessEqualOptions(value) => {
                        Self::LessEqualOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SelectOptions(value) => {
                        Self::SelectOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SliceOptions(value) => {
                        Self::SliceOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::TransposeConvOptions(value) => {
                        Self::TransposeConvOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SparseToDenseOptions(value) => {
                        Self::SparseToDenseOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::TileOptions(value) => {
                        Self::TileOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ExpandDimsOptions(value) => {
                        Self::ExpandDimsOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::EqualOptions(value) => {
                        Self::EqualOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::NotEqualOptions(value) => {
                        Self::NotEqualOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ShapeOptions(value) => {
                        Self::ShapeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::PowOptions(value) => {
                        Self::PowOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ArgMinOptions(value) => {
                        Self::ArgMinOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::FakeQuantOptions(value) => {
                        Self::FakeQuantOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::PackOptions(value) => {
                        Self::PackOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LogicalOrOptions(value) => {
                        Self::LogicalOrOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::OneHotOptions(value) => {
                        Self::OneHotOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LogicalAndOptions(value) => {
                        Self::LogicalAndOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LogicalNotOptions(value) => {
                        Self::LogicalNotOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::UnpackOptions(value) => {
                        Self::UnpackOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::FloorDivOptions(value) => {
                        Self::FloorDivOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::SquareOptions(value) => {
                        Self::SquareOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ZerosLikeOptions(value) => {
                        Self::ZerosLikeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::FillOptions(value) => {
                        Self::FillOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::BidirectionalSequenceLstmOptions(value) => {
                        Self::BidirectionalSequenceLstmOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::BidirectionalSequenceRnnOptions(value) => {
                        Self::BidirectionalSequenceRnnOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::UnidirectionalSequenceLstmOptions(value) => {
                        Self::UnidirectionalSequenceLstmOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::FloorModOptions(value) => {
                        Self::FloorModOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::RangeOptions(value) => {
                        Self::RangeOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::ResizeNearestNeighborOptions(value) => {
                        Self::ResizeNearestNeighborOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }

                    BuiltinOptionsRef::LeakyReluOptions(value) => {
                        Self::LeakyReluOptions(::planus::alloc::boxed::Box::new(
                            ::core::convert::TryFrom::try_from(value)?,
                        ))
                    }
                })
            }
        }

        impl<'a> ::planus::TableReadUnion<'a> for BuiltinOptionsRef<'a> {
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                tag: u8,
                field_offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                match tag {
                    1 => ::core::result::Result::Ok(Self::Conv2DOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    2 => ::core::result::Result::Ok(Self::DepthwiseConv2DOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    3 => ::core::result::Result::Ok(Self::ConcatEmbeddingsOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    4 => ::core::result::Result::Ok(Self::LshProjectionOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    5 => ::core::result::Result::Ok(Self::Pool2DOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    6 => ::core::result::Result::Ok(Self::SvdfOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    7 => ::core::result::Result::Ok(Self::RnnOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    8 => ::core::result::Result::Ok(Self::FullyConnectedOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    9 => ::core::result::Result::Ok(Self::SoftmaxOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    10 => ::core::result::Result::Ok(Self::ConcatenationOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    11 => ::core::result::Result::Ok(Self::AddOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    12 => ::core::result::Result::Ok(Self::L2NormOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    13 => ::core::result::Result::Ok(Self::LocalResponseNormalizationOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    14 => ::core::result::Result::Ok(Self::LstmOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    15 => ::core::result::Result::Ok(Self::ResizeBilinearOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    16 => ::core::result::Result::Ok(Self::CallOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    17 => ::core::result::Result::Ok(Self::ReshapeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    18 => ::core::result::Result::Ok(Self::SkipGramOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    19 => ::core::result::Result::Ok(Self::SpaceToDepthOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    20 => ::core::result::Result::Ok(Self::EmbeddingLookupSparseOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    21 => ::core::result::Result::Ok(Self::MulOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    22 => ::core::result::Result::Ok(Self::PadOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    23 => ::core::result::Result::Ok(Self::GatherOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    24 => ::core::result::Result::Ok(Self::BatchToSpaceNdOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    25 => ::core::result::Result::Ok(Self::SpaceToBatchNdOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    26 => ::core::result::Result::Ok(Self::TransposeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    27 => ::core::result::Result::Ok(Self::ReducerOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    28 => ::core::result::Result::Ok(Self::SubOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    29 => ::core::result::Result::Ok(Self::DivOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    30 => ::core::result::Result::Ok(Self::SqueezeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    31 => ::core::result::Result::Ok(Self::SequenceRnnOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    32 => ::core::result::Result::Ok(Self::StridedSliceOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    33 => ::core::result::Result::Ok(Self::ExpOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    34 => ::core::result::Result::Ok(Self::TopKv2Options(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    35 => ::core::result::Result::Ok(Self::SplitOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    36 => ::core::result::Result::Ok(Self::LogSoftmaxOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    37 => ::core::result::Result::Ok(Self::CastOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    38 => ::core::result::Result::Ok(Self::DequantizeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    39 => ::core::result::Result::Ok(Self::MaximumMinimumOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    40 => ::core::result::Result::Ok(Self::ArgMaxOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    41 => ::core::result::Result::Ok(Self::LessOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    42 => ::core::result::Result::Ok(Self::NegOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    43 => ::core::result::Result::Ok(Self::PadV2Options(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    44 => ::core::result::Result::Ok(Self::GreaterOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    45 => ::core::result::Result::Ok(Self::GreaterEqualOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    46 => ::core::result::Result::Ok(Self::LessEqualOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    47 => ::core::result::Result::Ok(Self::SelectOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    48 => ::core::result::Result::Ok(Self::SliceOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    49 => ::core::result::Result::Ok(Self::TransposeConvOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    50 => ::core::result::Result::Ok(Self::SparseToDenseOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    51 => ::core::result::Result::Ok(Self::TileOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    52 => ::core::result::Result::Ok(Self::ExpandDimsOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    53 => ::core::result::Result::Ok(Self::EqualOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    54 => ::core::result::Result::Ok(Self::NotEqualOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    55 => ::core::result::Result::Ok(Self::ShapeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    56 => ::core::result::Result::Ok(Self::PowOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    57 => ::core::result::Result::Ok(Self::ArgMinOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    58 => ::core::result::Result::Ok(Self::FakeQuantOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    59 => ::core::result::Result::Ok(Self::PackOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    60 => ::core::result::Result::Ok(Self::LogicalOrOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    61 => ::core::result::Result::Ok(Self::OneHotOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    62 => ::core::result::Result::Ok(Self::LogicalAndOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    63 => ::core::result::Result::Ok(Self::LogicalNotOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    64 => ::core::result::Result::Ok(Self::UnpackOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    65 => ::core::result::Result::Ok(Self::FloorDivOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    66 => ::core::result::Result::Ok(Self::SquareOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    67 => ::core::result::Result::Ok(Self::ZerosLikeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    68 => ::core::result::Result::Ok(Self::FillOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    69 => ::core::result::Result::Ok(Self::BidirectionalSequenceLstmOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    70 => ::core::result::Result::Ok(Self::BidirectionalSequenceRnnOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    71 => ::core::result::Result::Ok(Self::UnidirectionalSequenceLstmOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    72 => ::core::result::Result::Ok(Self::FloorModOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    73 => ::core::result::Result::Ok(Self::RangeOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    74 => ::core::result::Result::Ok(Self::ResizeNearestNeighborOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    75 => ::core::result::Result::Ok(Self::LeakyReluOptions(
                        ::planus::TableRead::from_buffer(buffer, field_offset)?,
                    )),
                    _ => {
                        ::core::result::Result::Err(::planus::errors::ErrorKind::UnknownUnionTag {
                            tag,
                        })
                    }
                }
            }
        }

        impl<'a> ::planus::VectorReadUnion<'a> for BuiltinOptionsRef<'a> {
            const VECTOR_NAME: &'static str = "[BuiltinOptionsRef]";
        }

        /// The table `OperatorCode` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `OperatorCode` in the file `schema.fbs:152`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct OperatorCode {
            /// The field `deprecated_builtin_code` in the table `OperatorCode`
            pub deprecated_builtin_code: i8,
            /// The field `custom_code` in the table `OperatorCode`
            pub custom_code: ::core::option::Option<::planus::alloc::string::String>,
            /// The field `version` in the table `OperatorCode`
            pub version: i32,
            /// The field `builtin_code` in the table `OperatorCode`
            pub builtin_code: i32,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for OperatorCode {
            fn default() -> Self {
                Self {
                    deprecated_builtin_code: 0,
                    custom_code: ::core::default::Default::default(),
                    version: 1,
                    builtin_code: 0,
                }
            }
        }

        impl OperatorCode {
            /// Creates a [OperatorCodeBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> OperatorCodeBuilder<()> {
                OperatorCodeBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_deprecated_builtin_code: impl ::planus::WriteAsDefault<i8, i8>,
                field_custom_code: impl ::planus::WriteAsOptional<
                    ::planus::Offset<::core::primitive::str>,
                >,
                field_version: impl ::planus::WriteAsDefault<i32, i32>,
                field_builtin_code: impl ::planus::WriteAsDefault<i32, i32>,
            ) -> ::planus::Offset<Self> {
                let prepared_deprecated_builtin_code =
                    field_deprecated_builtin_code.prepare(builder, &0);
                let prepared_custom_code = field_custom_code.prepare(builder);
                let prepared_version = field_version.prepare(builder, &1);
                let prepared_builtin_code = field_builtin_code.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<12> =
                    ::core::default::Default::default();
                if prepared_custom_code.is_some() {
                    table_writer.write_entry::<::planus::Offset<str>>(1);
                }
                if prepared_version.is_some() {
                    table_writer.write_entry::<i32>(2);
                }
                if prepared_builtin_code.is_some() {
                    table_writer.write_entry::<i32>(3);
                }
                if prepared_deprecated_builtin_code.is_some() {
                    table_writer.write_entry::<i8>(0);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_custom_code) =
                            prepared_custom_code
                        {
                            object_writer.write::<_, _, 4>(&prepared_custom_code);
                        }
                        if let ::core::option::Option::Some(prepared_version) = prepared_version {
                            object_writer.write::<_, _, 4>(&prepared_version);
                        }
                        if let ::core::option::Option::Some(prepared_builtin_code) =
                            prepared_builtin_code
                        {
                            object_writer.write::<_, _, 4>(&prepared_builtin_code);
                        }
                        if let ::core::option::Option::Some(prepared_deprecated_builtin_code) =
                            prepared_deprecated_builtin_code
                        {
                            object_writer.write::<_, _, 1>(&prepared_deprecated_builtin_code);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<OperatorCode>> for OperatorCode {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<OperatorCode> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<OperatorCode>> for OperatorCode {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<OperatorCode>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<OperatorCode> for OperatorCode {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<OperatorCode> {
                OperatorCode::create(
                    builder,
                    self.deprecated_builtin_code,
                    &self.custom_code,
                    self.version,
                    self.builtin_code,
                )
            }
        }

        /// Builder for serializing an instance of the [OperatorCode] type.
        ///
        /// Can be created using the [OperatorCode::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct OperatorCodeBuilder<State>(State);

        impl OperatorCodeBuilder<()> {
            /// Setter for the [`deprecated_builtin_code` field](OperatorCode#structfield.deprecated_builtin_code).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn deprecated_builtin_code<T0>(self, value: T0) -> OperatorCodeBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<i8, i8>,
            {
                OperatorCodeBuilder((value,))
            }

            /// Sets the [`deprecated_builtin_code` field](OperatorCode#structfield.deprecated_builtin_code) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn deprecated_builtin_code_as_default(
                self,
            ) -> OperatorCodeBuilder<(::planus::DefaultValue,)> {
                self.deprecated_builtin_code(::planus::DefaultValue)
            }
        }

        impl<T0> OperatorCodeBuilder<(T0,)> {
            /// Setter for the [`custom_code` field](OperatorCode#structfield.custom_code).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn custom_code<T1>(self, value: T1) -> OperatorCodeBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            {
                let (v0,) = self.0;
                OperatorCodeBuilder((v0, value))
            }

            /// Sets the [`custom_code` field](OperatorCode#structfield.custom_code) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn custom_code_as_null(self) -> OperatorCodeBuilder<(T0, ())> {
                self.custom_code(())
            }
        }

        impl<T0, T1> OperatorCodeBuilder<(T0, T1)> {
            /// Setter for the [`version` field](OperatorCode#structfield.version).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn version<T2>(self, value: T2) -> OperatorCodeBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1) = self.0;
                OperatorCodeBuilder((v0, v1, value))
            }

            /// Sets the [`version` field](OperatorCode#structfield.version) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn version_as_default(
                self,
            ) -> OperatorCodeBuilder<(T0, T1, ::planus::DefaultValue)> {
                self.version(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2> OperatorCodeBuilder<(T0, T1, T2)> {
            /// Setter for the [`builtin_code` field](OperatorCode#structfield.builtin_code).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn builtin_code<T3>(self, value: T3) -> OperatorCodeBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsDefault<i32, i32>,
            {
                let (v0, v1, v2) = self.0;
                OperatorCodeBuilder((v0, v1, v2, value))
            }

            /// Sets the [`builtin_code` field](OperatorCode#structfield.builtin_code) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn builtin_code_as_default(
                self,
            ) -> OperatorCodeBuilder<(T0, T1, T2, ::planus::DefaultValue)> {
                self.builtin_code(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2, T3> OperatorCodeBuilder<(T0, T1, T2, T3)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [OperatorCode].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<OperatorCode>
            where
                Self: ::planus::WriteAsOffset<OperatorCode>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAs<::planus::Offset<OperatorCode>>
            for OperatorCodeBuilder<(T0, T1, T2, T3)>
        {
            type Prepared = ::planus::Offset<OperatorCode>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<OperatorCode> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAsOptional<::planus::Offset<OperatorCode>>
            for OperatorCodeBuilder<(T0, T1, T2, T3)>
        {
            type Prepared = ::planus::Offset<OperatorCode>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<OperatorCode>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<i8, i8>,
                T1: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T2: ::planus::WriteAsDefault<i32, i32>,
                T3: ::planus::WriteAsDefault<i32, i32>,
            > ::planus::WriteAsOffset<OperatorCode> for OperatorCodeBuilder<(T0, T1, T2, T3)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<OperatorCode> {
                let (v0, v1, v2, v3) = &self.0;
                OperatorCode::create(builder, v0, v1, v2, v3)
            }
        }

        /// Reference to a deserialized [OperatorCode].
        #[derive(Copy, Clone)]
        pub struct OperatorCodeRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> OperatorCodeRef<'a> {
            /// Getter for the [`deprecated_builtin_code` field](OperatorCode#structfield.deprecated_builtin_code).
            #[inline]
            pub fn deprecated_builtin_code(&self) -> ::planus::Result<i8> {
                ::core::result::Result::Ok(
                    self.0
                        .access(0, "OperatorCode", "deprecated_builtin_code")?
                        .unwrap_or(0),
                )
            }

            /// Getter for the [`custom_code` field](OperatorCode#structfield.custom_code).
            #[inline]
            pub fn custom_code(
                &self,
            ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>> {
                self.0.access(1, "OperatorCode", "custom_code")
            }

            /// Getter for the [`version` field](OperatorCode#structfield.version).
            #[inline]
            pub fn version(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0.access(2, "OperatorCode", "version")?.unwrap_or(1),
                )
            }

            /// Getter for the [`builtin_code` field](OperatorCode#structfield.builtin_code).
            #[inline]
            pub fn builtin_code(&self) -> ::planus::Result<i32> {
                ::core::result::Result::Ok(
                    self.0
                        .access(3, "OperatorCode", "builtin_code")?
                        .unwrap_or(0),
                )
            }
        }

        impl<'a> ::core::fmt::Debug for OperatorCodeRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("OperatorCodeRef");
                f.field("deprecated_builtin_code", &self.deprecated_builtin_code());
                if let ::core::option::Option::Some(field_custom_code) =
                    self.custom_code().transpose()
                {
                    f.field("custom_code", &field_custom_code);
                }
                f.field("version", &self.version());
                f.field("builtin_code", &self.builtin_code());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<OperatorCodeRef<'a>> for OperatorCode {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: OperatorCodeRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    deprecated_builtin_code: ::core::convert::TryInto::try_into(
                        value.deprecated_builtin_code()?,
                    )?,
                    custom_code: value.custom_code()?.map(::core::convert::Into::into),
                    version: ::core::convert::TryInto::try_into(value.version()?)?,
                    builtin_code: ::core::convert::TryInto::try_into(value.builtin_code()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for OperatorCodeRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for OperatorCodeRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location(
                        "[OperatorCodeRef]",
                        "get",
                        buffer.offset_from_start,
                    )
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<OperatorCode>> for OperatorCode {
            type Value = ::planus::Offset<OperatorCode>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<OperatorCode>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for OperatorCodeRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[OperatorCodeRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `Operator` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `Operator` in the file `schema.fbs:159`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub struct Operator {
            /// The field `opcode_index` in the table `Operator`
            pub opcode_index: u32,
            /// The field `inputs` in the table `Operator`
            pub inputs: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
            /// The field `outputs` in the table `Operator`
            pub outputs: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
            /// The field `builtin_options` in the table `Operator`
            pub builtin_options: ::core::option::Option<self::BuiltinOptions>,
            /// The field `custom_options` in the table `Operator`
            pub custom_options: ::core::option::Option<::planus::alloc::vec::Vec<u8>>,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for Operator {
            fn default() -> Self {
                Self {
                    opcode_index: 0,
                    inputs: ::core::default::Default::default(),
                    outputs: ::core::default::Default::default(),
                    builtin_options: ::core::default::Default::default(),
                    custom_options: ::core::default::Default::default(),
                }
            }
        }

        impl Operator {
            /// Creates a [OperatorBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> OperatorBuilder<()> {
                OperatorBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_opcode_index: impl ::planus::WriteAsDefault<u32, u32>,
                field_inputs: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                field_outputs: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                field_builtin_options: impl ::planus::WriteAsOptionalUnion<self::BuiltinOptions>,
                field_custom_options: impl ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
            ) -> ::planus::Offset<Self> {
                let prepared_opcode_index = field_opcode_index.prepare(builder, &0);
                let prepared_inputs = field_inputs.prepare(builder);
                let prepared_outputs = field_outputs.prepare(builder);
                let prepared_builtin_options = field_builtin_options.prepare(builder);
                let prepared_custom_options = field_custom_options.prepare(builder);

                let mut table_writer: ::planus::table_writer::TableWriter<16> =
                    ::core::default::Default::default();
                if prepared_opcode_index.is_some() {
                    table_writer.write_entry::<u32>(0);
                }
                if prepared_inputs.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(1);
                }
                if prepared_outputs.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(2);
                }
                if prepared_builtin_options.is_some() {
                    table_writer.write_entry::<::planus::Offset<self::BuiltinOptions>>(4);
                }
                if prepared_custom_options.is_some() {
                    table_writer.write_entry::<::planus::Offset<[u8]>>(5);
                }
                if prepared_builtin_options.is_some() {
                    table_writer.write_entry::<u8>(3);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_opcode_index) =
                            prepared_opcode_index
                        {
                            object_writer.write::<_, _, 4>(&prepared_opcode_index);
                        }
                        if let ::core::option::Option::Some(prepared_inputs) = prepared_inputs {
                            object_writer.write::<_, _, 4>(&prepared_inputs);
                        }
                        if let ::core::option::Option::Some(prepared_outputs) = prepared_outputs {
                            object_writer.write::<_, _, 4>(&prepared_outputs);
                        }
                        if let ::core::option::Option::Some(prepared_builtin_options) =
                            prepared_builtin_options
                        {
                            object_writer.write::<_, _, 4>(&prepared_builtin_options.offset());
                        }
                        if let ::core::option::Option::Some(prepared_custom_options) =
                            prepared_custom_options
                        {
                            object_writer.write::<_, _, 4>(&prepared_custom_options);
                        }
                        if let ::core::option::Option::Some(prepared_builtin_options) =
                            prepared_builtin_options
                        {
                            object_writer.write::<_, _, 1>(&prepared_builtin_options.tag());
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<Operator>> for Operator {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Operator> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<Operator>> for Operator {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Operator>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<Operator> for Operator {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Operator> {
                Operator::create(
                    builder,
                    self.opcode_index,
                    &self.inputs,
                    &self.outputs,
                    &self.builtin_options,
                    &self.custom_options,
                )
            }
        }

        /// Builder for serializing an instance of the [Operator] type.
        ///
        /// Can be created using the [Operator::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct OperatorBuilder<State>(State);

        impl OperatorBuilder<()> {
            /// Setter for the [`opcode_index` field](Operator#structfield.opcode_index).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn opcode_index<T0>(self, value: T0) -> OperatorBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<u32, u32>,
            {
                OperatorBuilder((value,))
            }

            /// Sets the [`opcode_index` field](Operator#structfield.opcode_index) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn opcode_index_as_default(self) -> OperatorBuilder<(::planus::DefaultValue,)> {
                self.opcode_index(::planus::DefaultValue)
            }
        }

        impl<T0> OperatorBuilder<(T0,)> {
            /// Setter for the [`inputs` field](Operator#structfield.inputs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn inputs<T1>(self, value: T1) -> OperatorBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                let (v0,) = self.0;
                OperatorBuilder((v0, value))
            }

            /// Sets the [`inputs` field](Operator#structfield.inputs) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn inputs_as_null(self) -> OperatorBuilder<(T0, ())> {
                self.inputs(())
            }
        }

        impl<T0, T1> OperatorBuilder<(T0, T1)> {
            /// Setter for the [`outputs` field](Operator#structfield.outputs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn outputs<T2>(self, value: T2) -> OperatorBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                let (v0, v1) = self.0;
                OperatorBuilder((v0, v1, value))
            }

            /// Sets the [`outputs` field](Operator#structfield.outputs) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn outputs_as_null(self) -> OperatorBuilder<(T0, T1, ())> {
                self.outputs(())
            }
        }

        impl<T0, T1, T2> OperatorBuilder<(T0, T1, T2)> {
            /// Setter for the [`builtin_options` field](Operator#structfield.builtin_options).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn builtin_options<T3>(self, value: T3) -> OperatorBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsOptionalUnion<self::BuiltinOptions>,
            {
                let (v0, v1, v2) = self.0;
                OperatorBuilder((v0, v1, v2, value))
            }

            /// Sets the [`builtin_options` field](Operator#structfield.builtin_options) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn builtin_options_as_null(self) -> OperatorBuilder<(T0, T1, T2, ())> {
                self.builtin_options(())
            }
        }

        impl<T0, T1, T2, T3> OperatorBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`custom_options` field](Operator#structfield.custom_options).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn custom_options<T4>(self, value: T4) -> OperatorBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
            {
                let (v0, v1, v2, v3) = self.0;
                OperatorBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`custom_options` field](Operator#structfield.custom_options) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn custom_options_as_null(self) -> OperatorBuilder<(T0, T1, T2, T3, ())> {
                self.custom_options(())
            }
        }

        impl<T0, T1, T2, T3, T4> OperatorBuilder<(T0, T1, T2, T3, T4)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [Operator].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<Operator>
            where
                Self: ::planus::WriteAsOffset<Operator>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<u32, u32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T3: ::planus::WriteAsOptionalUnion<self::BuiltinOptions>,
                T4: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
            > ::planus::WriteAs<::planus::Offset<Operator>>
            for OperatorBuilder<(T0, T1, T2, T3, T4)>
        {
            type Prepared = ::planus::Offset<Operator>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Operator> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<u32, u32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T3: ::planus::WriteAsOptionalUnion<self::BuiltinOptions>,
                T4: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
            > ::planus::WriteAsOptional<::planus::Offset<Operator>>
            for OperatorBuilder<(T0, T1, T2, T3, T4)>
        {
            type Prepared = ::planus::Offset<Operator>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Operator>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<u32, u32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T3: ::planus::WriteAsOptionalUnion<self::BuiltinOptions>,
                T4: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
            > ::planus::WriteAsOffset<Operator> for OperatorBuilder<(T0, T1, T2, T3, T4)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Operator> {
                let (v0, v1, v2, v3, v4) = &self.0;
                Operator::create(builder, v0, v1, v2, v3, v4)
            }
        }

        /// Reference to a deserialized [Operator].
        #[derive(Copy, Clone)]
        pub struct OperatorRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> OperatorRef<'a> {
            /// Getter for the [`opcode_index` field](Operator#structfield.opcode_index).
            #[inline]
            pub fn opcode_index(&self) -> ::planus::Result<u32> {
                ::core::result::Result::Ok(
                    self.0.access(0, "Operator", "opcode_index")?.unwrap_or(0),
                )
            }

            /// Getter for the [`inputs` field](Operator#structfield.inputs).
            #[inline]
            pub fn inputs(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(1, "Operator", "inputs")
            }

            /// Getter for the [`outputs` field](Operator#structfield.outputs).
            #[inline]
            pub fn outputs(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(2, "Operator", "outputs")
            }

            /// Getter for the [`builtin_options` field](Operator#structfield.builtin_options).
            #[inline]
            pub fn builtin_options(
                &self,
            ) -> ::planus::Result<::core::option::Option<self::BuiltinOptionsRef<'a>>> {
                self.0.access_union(3, "Operator", "builtin_options")
            }

            /// Getter for the [`custom_options` field](Operator#structfield.custom_options).
            #[inline]
            pub fn custom_options(&self) -> ::planus::Result<::core::option::Option<&'a [u8]>> {
                self.0.access(5, "Operator", "custom_options")
            }
        }

        impl<'a> ::core::fmt::Debug for OperatorRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("OperatorRef");
                f.field("opcode_index", &self.opcode_index());
                if let ::core::option::Option::Some(field_inputs) = self.inputs().transpose() {
                    f.field("inputs", &field_inputs);
                }
                if let ::core::option::Option::Some(field_outputs) = self.outputs().transpose() {
                    f.field("outputs", &field_outputs);
                }
                if let ::core::option::Option::Some(field_builtin_options) =
                    self.builtin_options().transpose()
                {
                    f.field("builtin_options", &field_builtin_options);
                }
                if let ::core::option::Option::Some(field_custom_options) =
                    self.custom_options().transpose()
                {
                    f.field("custom_options", &field_custom_options);
                }
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<OperatorRef<'a>> for Operator {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: OperatorRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    opcode_index: ::core::convert::TryInto::try_into(value.opcode_index()?)?,
                    inputs: if let ::core::option::Option::Some(inputs) = value.inputs()? {
                        ::core::option::Option::Some(inputs.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    outputs: if let ::core::option::Option::Some(outputs) = value.outputs()? {
                        ::core::option::Option::Some(outputs.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    builtin_options: if let ::core::option::Option::Some(builtin_options) =
                        value.builtin_options()?
                    {
                        ::core::option::Option::Some(::core::convert::TryInto::try_into(
                            builtin_options,
                        )?)
                    } else {
                        ::core::option::Option::None
                    },
                    custom_options: value.custom_options()?.map(|v| v.to_vec()),
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for OperatorRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for OperatorRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location("[OperatorRef]", "get", buffer.offset_from_start)
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<Operator>> for Operator {
            type Value = ::planus::Offset<Operator>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<Operator>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for OperatorRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[OperatorRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `SubGraph` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `SubGraph` in the file `schema.fbs:167`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub struct SubGraph {
            /// The field `tensors` in the table `SubGraph`
            pub tensors: ::core::option::Option<::planus::alloc::vec::Vec<self::Tensor>>,
            /// The field `inputs` in the table `SubGraph`
            pub inputs: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
            /// The field `outputs` in the table `SubGraph`
            pub outputs: ::core::option::Option<::planus::alloc::vec::Vec<i32>>,
            /// The field `operators` in the table `SubGraph`
            pub operators: ::core::option::Option<::planus::alloc::vec::Vec<self::Operator>>,
            /// The field `name` in the table `SubGraph`
            pub name: ::core::option::Option<::planus::alloc::string::String>,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for SubGraph {
            fn default() -> Self {
                Self {
                    tensors: ::core::default::Default::default(),
                    inputs: ::core::default::Default::default(),
                    outputs: ::core::default::Default::default(),
                    operators: ::core::default::Default::default(),
                    name: ::core::default::Default::default(),
                }
            }
        }

        impl SubGraph {
            /// Creates a [SubGraphBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> SubGraphBuilder<()> {
                SubGraphBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_tensors: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::Tensor>]>,
                >,
                field_inputs: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                field_outputs: impl ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                field_operators: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::Operator>]>,
                >,
                field_name: impl ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            ) -> ::planus::Offset<Self> {
                let prepared_tensors = field_tensors.prepare(builder);
                let prepared_inputs = field_inputs.prepare(builder);
                let prepared_outputs = field_outputs.prepare(builder);
                let prepared_operators = field_operators.prepare(builder);
                let prepared_name = field_name.prepare(builder);

                let mut table_writer: ::planus::table_writer::TableWriter<14> =
                    ::core::default::Default::default();
                if prepared_tensors.is_some() {
                    table_writer
                        .write_entry::<::planus::Offset<[::planus::Offset<self::Tensor>]>>(0);
                }
                if prepared_inputs.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(1);
                }
                if prepared_outputs.is_some() {
                    table_writer.write_entry::<::planus::Offset<[i32]>>(2);
                }
                if prepared_operators.is_some() {
                    table_writer
                        .write_entry::<::planus::Offset<[::planus::Offset<self::Operator>]>>(3);
                }
                if prepared_name.is_some() {
                    table_writer.write_entry::<::planus::Offset<str>>(4);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_tensors) = prepared_tensors {
                            object_writer.write::<_, _, 4>(&prepared_tensors);
                        }
                        if let ::core::option::Option::Some(prepared_inputs) = prepared_inputs {
                            object_writer.write::<_, _, 4>(&prepared_inputs);
                        }
                        if let ::core::option::Option::Some(prepared_outputs) = prepared_outputs {
                            object_writer.write::<_, _, 4>(&prepared_outputs);
                        }
                        if let ::core::option::Option::Some(prepared_operators) = prepared_operators
                        {
                            object_writer.write::<_, _, 4>(&prepared_operators);
                        }
                        if let ::core::option::Option::Some(prepared_name) = prepared_name {
                            object_writer.write::<_, _, 4>(&prepared_name);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<SubGraph>> for SubGraph {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SubGraph> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<SubGraph>> for SubGraph {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SubGraph>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<SubGraph> for SubGraph {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SubGraph> {
                SubGraph::create(
                    builder,
                    &self.tensors,
                    &self.inputs,
                    &self.outputs,
                    &self.operators,
                    &self.name,
                )
            }
        }

        /// Builder for serializing an instance of the [SubGraph] type.
        ///
        /// Can be created using the [SubGraph::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct SubGraphBuilder<State>(State);

        impl SubGraphBuilder<()> {
            /// Setter for the [`tensors` field](SubGraph#structfield.tensors).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn tensors<T0>(self, value: T0) -> SubGraphBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Tensor>]>>,
            {
                SubGraphBuilder((value,))
            }

            /// Sets the [`tensors` field](SubGraph#structfield.tensors) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn tensors_as_null(self) -> SubGraphBuilder<((),)> {
                self.tensors(())
            }
        }

        impl<T0> SubGraphBuilder<(T0,)> {
            /// Setter for the [`inputs` field](SubGraph#structfield.inputs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn inputs<T1>(self, value: T1) -> SubGraphBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                let (v0,) = self.0;
                SubGraphBuilder((v0, value))
            }

            /// Sets the [`inputs` field](SubGraph#structfield.inputs) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn inputs_as_null(self) -> SubGraphBuilder<(T0, ())> {
                self.inputs(())
            }
        }

        impl<T0, T1> SubGraphBuilder<(T0, T1)> {
            /// Setter for the [`outputs` field](SubGraph#structfield.outputs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn outputs<T2>(self, value: T2) -> SubGraphBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
            {
                let (v0, v1) = self.0;
                SubGraphBuilder((v0, v1, value))
            }

            /// Sets the [`outputs` field](SubGraph#structfield.outputs) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn outputs_as_null(self) -> SubGraphBuilder<(T0, T1, ())> {
                self.outputs(())
            }
        }

        impl<T0, T1, T2> SubGraphBuilder<(T0, T1, T2)> {
            /// Setter for the [`operators` field](SubGraph#structfield.operators).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn operators<T3>(self, value: T3) -> SubGraphBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Operator>]>>,
            {
                let (v0, v1, v2) = self.0;
                SubGraphBuilder((v0, v1, v2, value))
            }

            /// Sets the [`operators` field](SubGraph#structfield.operators) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn operators_as_null(self) -> SubGraphBuilder<(T0, T1, T2, ())> {
                self.operators(())
            }
        }

        impl<T0, T1, T2, T3> SubGraphBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`name` field](SubGraph#structfield.name).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn name<T4>(self, value: T4) -> SubGraphBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            {
                let (v0, v1, v2, v3) = self.0;
                SubGraphBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`name` field](SubGraph#structfield.name) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn name_as_null(self) -> SubGraphBuilder<(T0, T1, T2, T3, ())> {
                self.name(())
            }
        }

        impl<T0, T1, T2, T3, T4> SubGraphBuilder<(T0, T1, T2, T3, T4)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [SubGraph].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<SubGraph>
            where
                Self: ::planus::WriteAsOffset<SubGraph>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Tensor>]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Operator>]>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            > ::planus::WriteAs<::planus::Offset<SubGraph>>
            for SubGraphBuilder<(T0, T1, T2, T3, T4)>
        {
            type Prepared = ::planus::Offset<SubGraph>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SubGraph> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Tensor>]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Operator>]>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            > ::planus::WriteAsOptional<::planus::Offset<SubGraph>>
            for SubGraphBuilder<(T0, T1, T2, T3, T4)>
        {
            type Prepared = ::planus::Offset<SubGraph>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<SubGraph>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Tensor>]>>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[i32]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Operator>]>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            > ::planus::WriteAsOffset<SubGraph> for SubGraphBuilder<(T0, T1, T2, T3, T4)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<SubGraph> {
                let (v0, v1, v2, v3, v4) = &self.0;
                SubGraph::create(builder, v0, v1, v2, v3, v4)
            }
        }

        /// Reference to a deserialized [SubGraph].
        #[derive(Copy, Clone)]
        pub struct SubGraphRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> SubGraphRef<'a> {
            /// Getter for the [`tensors` field](SubGraph#structfield.tensors).
            #[inline]
            pub fn tensors(
                &self,
            ) -> ::planus::Result<
                ::core::option::Option<::planus::Vector<'a, ::planus::Result<self::TensorRef<'a>>>>,
            > {
                self.0.access(0, "SubGraph", "tensors")
            }

            /// Getter for the [`inputs` field](SubGraph#structfield.inputs).
            #[inline]
            pub fn inputs(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(1, "SubGraph", "inputs")
            }

            /// Getter for the [`outputs` field](SubGraph#structfield.outputs).
            #[inline]
            pub fn outputs(
                &self,
            ) -> ::planus::Result<::core::option::Option<::planus::Vector<'a, i32>>> {
                self.0.access(2, "SubGraph", "outputs")
            }

            /// Getter for the [`operators` field](SubGraph#structfield.operators).
            #[inline]
            pub fn operators(
                &self,
            ) -> ::planus::Result<
                ::core::option::Option<
                    ::planus::Vector<'a, ::planus::Result<self::OperatorRef<'a>>>,
                >,
            > {
                self.0.access(3, "SubGraph", "operators")
            }

            /// Getter for the [`name` field](SubGraph#structfield.name).
            #[inline]
            pub fn name(
                &self,
            ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>> {
                self.0.access(4, "SubGraph", "name")
            }
        }

        impl<'a> ::core::fmt::Debug for SubGraphRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("SubGraphRef");
                if let ::core::option::Option::Some(field_tensors) = self.tensors().transpose() {
                    f.field("tensors", &field_tensors);
                }
                if let ::core::option::Option::Some(field_inputs) = self.inputs().transpose() {
                    f.field("inputs", &field_inputs);
                }
                if let ::core::option::Option::Some(field_outputs) = self.outputs().transpose() {
                    f.field("outputs", &field_outputs);
                }
                if let ::core::option::Option::Some(field_operators) = self.operators().transpose()
                {
                    f.field("operators", &field_operators);
                }
                if let ::core::option::Option::Some(field_name) = self.name().transpose() {
                    f.field("name", &field_name);
                }
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<SubGraphRef<'a>> for SubGraph {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: SubGraphRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    tensors: if let ::core::option::Option::Some(tensors) = value.tensors()? {
                        ::core::option::Option::Some(tensors.to_vec_result()?)
                    } else {
                        ::core::option::Option::None
                    },
                    inputs: if let ::core::option::Option::Some(inputs) = value.inputs()? {
                        ::core::option::Option::Some(inputs.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    outputs: if let ::core::option::Option::Some(outputs) = value.outputs()? {
                        ::core::option::Option::Some(outputs.to_vec()?)
                    } else {
                        ::core::option::Option::None
                    },
                    operators: if let ::core::option::Option::Some(operators) = value.operators()? {
                        ::core::option::Option::Some(operators.to_vec_result()?)
                    } else {
                        ::core::option::Option::None
                    },
                    name: value.name()?.map(::core::convert::Into::into),
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for SubGraphRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for SubGraphRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location("[SubGraphRef]", "get", buffer.offset_from_start)
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<SubGraph>> for SubGraph {
            type Value = ::planus::Offset<SubGraph>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<SubGraph>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for SubGraphRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[SubGraphRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `Buffer` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `Buffer` in the file `schema.fbs:175`
        #[derive(
            Clone,
            Debug,
            PartialEq,
            PartialOrd,
            Eq,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
        )]
        pub struct Buffer {
            /// The field `data` in the table `Buffer`
            pub data: ::core::option::Option<::planus::alloc::vec::Vec<u8>>,
            /// The field `offset` in the table `Buffer`
            pub offset: u64,
            /// The field `size` in the table `Buffer`
            pub size: u64,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for Buffer {
            fn default() -> Self {
                Self {
                    data: ::core::default::Default::default(),
                    offset: 0,
                    size: 0,
                }
            }
        }

        impl Buffer {
            /// Creates a [BufferBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> BufferBuilder<()> {
                BufferBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_data: impl ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                field_offset: impl ::planus::WriteAsDefault<u64, u64>,
                field_size: impl ::planus::WriteAsDefault<u64, u64>,
            ) -> ::planus::Offset<Self> {
                let prepared_data = field_data.prepare(builder);
                let prepared_offset = field_offset.prepare(builder, &0);
                let prepared_size = field_size.prepare(builder, &0);

                let mut table_writer: ::planus::table_writer::TableWriter<10> =
                    ::core::default::Default::default();
                if prepared_offset.is_some() {
                    table_writer.write_entry::<u64>(1);
                }
                if prepared_size.is_some() {
                    table_writer.write_entry::<u64>(2);
                }
                if prepared_data.is_some() {
                    table_writer.write_entry::<::planus::Offset<[u8]>>(0);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_offset) = prepared_offset {
                            object_writer.write::<_, _, 8>(&prepared_offset);
                        }
                        if let ::core::option::Option::Some(prepared_size) = prepared_size {
                            object_writer.write::<_, _, 8>(&prepared_size);
                        }
                        if let ::core::option::Option::Some(prepared_data) = prepared_data {
                            object_writer.write::<_, _, 4>(&prepared_data);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<Buffer>> for Buffer {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Buffer> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<Buffer>> for Buffer {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Buffer>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<Buffer> for Buffer {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Buffer> {
                Buffer::create(builder, &self.data, self.offset, self.size)
            }
        }

        /// Builder for serializing an instance of the [Buffer] type.
        ///
        /// Can be created using the [Buffer::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct BufferBuilder<State>(State);

        impl BufferBuilder<()> {
            /// Setter for the [`data` field](Buffer#structfield.data).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn data<T0>(self, value: T0) -> BufferBuilder<(T0,)>
            where
                T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
            {
                BufferBuilder((value,))
            }

            /// Sets the [`data` field](Buffer#structfield.data) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn data_as_null(self) -> BufferBuilder<((),)> {
                self.data(())
            }
        }

        impl<T0> BufferBuilder<(T0,)> {
            /// Setter for the [`offset` field](Buffer#structfield.offset).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn offset<T1>(self, value: T1) -> BufferBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsDefault<u64, u64>,
            {
                let (v0,) = self.0;
                BufferBuilder((v0, value))
            }

            /// Sets the [`offset` field](Buffer#structfield.offset) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn offset_as_default(self) -> BufferBuilder<(T0, ::planus::DefaultValue)> {
                self.offset(::planus::DefaultValue)
            }
        }

        impl<T0, T1> BufferBuilder<(T0, T1)> {
            /// Setter for the [`size` field](Buffer#structfield.size).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn size<T2>(self, value: T2) -> BufferBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsDefault<u64, u64>,
            {
                let (v0, v1) = self.0;
                BufferBuilder((v0, v1, value))
            }

            /// Sets the [`size` field](Buffer#structfield.size) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn size_as_default(self) -> BufferBuilder<(T0, T1, ::planus::DefaultValue)> {
                self.size(::planus::DefaultValue)
            }
        }

        impl<T0, T1, T2> BufferBuilder<(T0, T1, T2)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [Buffer].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<Buffer>
            where
                Self: ::planus::WriteAsOffset<Buffer>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T1: ::planus::WriteAsDefault<u64, u64>,
                T2: ::planus::WriteAsDefault<u64, u64>,
            > ::planus::WriteAs<::planus::Offset<Buffer>> for BufferBuilder<(T0, T1, T2)>
        {
            type Prepared = ::planus::Offset<Buffer>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Buffer> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T1: ::planus::WriteAsDefault<u64, u64>,
                T2: ::planus::WriteAsDefault<u64, u64>,
            > ::planus::WriteAsOptional<::planus::Offset<Buffer>> for BufferBuilder<(T0, T1, T2)>
        {
            type Prepared = ::planus::Offset<Buffer>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Buffer>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsOptional<::planus::Offset<[u8]>>,
                T1: ::planus::WriteAsDefault<u64, u64>,
                T2: ::planus::WriteAsDefault<u64, u64>,
            > ::planus::WriteAsOffset<Buffer> for BufferBuilder<(T0, T1, T2)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Buffer> {
                let (v0, v1, v2) = &self.0;
                Buffer::create(builder, v0, v1, v2)
            }
        }

        /// Reference to a deserialized [Buffer].
        #[derive(Copy, Clone)]
        pub struct BufferRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> BufferRef<'a> {
            /// Getter for the [`data` field](Buffer#structfield.data).
            #[inline]
            pub fn data(&self) -> ::planus::Result<::core::option::Option<&'a [u8]>> {
                self.0.access(0, "Buffer", "data")
            }

            /// Getter for the [`offset` field](Buffer#structfield.offset).
            #[inline]
            pub fn offset(&self) -> ::planus::Result<u64> {
                ::core::result::Result::Ok(self.0.access(1, "Buffer", "offset")?.unwrap_or(0))
            }

            /// Getter for the [`size` field](Buffer#structfield.size).
            #[inline]
            pub fn size(&self) -> ::planus::Result<u64> {
                ::core::result::Result::Ok(self.0.access(2, "Buffer", "size")?.unwrap_or(0))
            }
        }

        impl<'a> ::core::fmt::Debug for BufferRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("BufferRef");
                if let ::core::option::Option::Some(field_data) = self.data().transpose() {
                    f.field("data", &field_data);
                }
                f.field("offset", &self.offset());
                f.field("size", &self.size());
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<BufferRef<'a>> for Buffer {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: BufferRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    data: value.data()?.map(|v| v.to_vec()),
                    offset: ::core::convert::TryInto::try_into(value.offset()?)?,
                    size: ::core::convert::TryInto::try_into(value.size()?)?,
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for BufferRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for BufferRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location("[BufferRef]", "get", buffer.offset_from_start)
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<Buffer>> for Buffer {
            type Value = ::planus::Offset<Buffer>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<Buffer>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for BufferRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[BufferRef]", "read_as_root", 0)
                })
            }
        }

        /// The table `Model` in the namespace `tflite`
        ///
        /// Generated from these locations:
        /// * Table `Model` in the file `schema.fbs:181`
        #[derive(Clone, Debug, PartialEq, PartialOrd, ::serde::Serialize, ::serde::Deserialize)]
        pub struct Model {
            /// The field `version` in the table `Model`
            pub version: u32,
            /// The field `operator_codes` in the table `Model`
            pub operator_codes:
                ::core::option::Option<::planus::alloc::vec::Vec<self::OperatorCode>>,
            /// The field `subgraphs` in the table `Model`
            pub subgraphs: ::core::option::Option<::planus::alloc::vec::Vec<self::SubGraph>>,
            /// The field `description` in the table `Model`
            pub description: ::core::option::Option<::planus::alloc::string::String>,
            /// The field `buffers` in the table `Model`
            pub buffers: ::core::option::Option<::planus::alloc::vec::Vec<self::Buffer>>,
        }

        #[allow(clippy::derivable_impls)]
        impl ::core::default::Default for Model {
            fn default() -> Self {
                Self {
                    version: 0,
                    operator_codes: ::core::default::Default::default(),
                    subgraphs: ::core::default::Default::default(),
                    description: ::core::default::Default::default(),
                    buffers: ::core::default::Default::default(),
                }
            }
        }

        impl Model {
            /// Creates a [ModelBuilder] for serializing an instance of this table.
            #[inline]
            pub fn builder() -> ModelBuilder<()> {
                ModelBuilder(())
            }

            #[allow(clippy::too_many_arguments)]
            pub fn create(
                builder: &mut ::planus::Builder,
                field_version: impl ::planus::WriteAsDefault<u32, u32>,
                field_operator_codes: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::OperatorCode>]>,
                >,
                field_subgraphs: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::SubGraph>]>,
                >,
                field_description: impl ::planus::WriteAsOptional<
                    ::planus::Offset<::core::primitive::str>,
                >,
                field_buffers: impl ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::Buffer>]>,
                >,
            ) -> ::planus::Offset<Self> {
                let prepared_version = field_version.prepare(builder, &0);
                let prepared_operator_codes = field_operator_codes.prepare(builder);
                let prepared_subgraphs = field_subgraphs.prepare(builder);
                let prepared_description = field_description.prepare(builder);
                let prepared_buffers = field_buffers.prepare(builder);

                let mut table_writer: ::planus::table_writer::TableWriter<14> =
                    ::core::default::Default::default();
                if prepared_version.is_some() {
                    table_writer.write_entry::<u32>(0);
                }
                if prepared_operator_codes.is_some() {
                    table_writer
                        .write_entry::<::planus::Offset<[::planus::Offset<self::OperatorCode>]>>(1);
                }
                if prepared_subgraphs.is_some() {
                    table_writer
                        .write_entry::<::planus::Offset<[::planus::Offset<self::SubGraph>]>>(2);
                }
                if prepared_description.is_some() {
                    table_writer.write_entry::<::planus::Offset<str>>(3);
                }
                if prepared_buffers.is_some() {
                    table_writer
                        .write_entry::<::planus::Offset<[::planus::Offset<self::Buffer>]>>(4);
                }

                unsafe {
                    table_writer.finish(builder, |object_writer| {
                        if let ::core::option::Option::Some(prepared_version) = prepared_version {
                            object_writer.write::<_, _, 4>(&prepared_version);
                        }
                        if let ::core::option::Option::Some(prepared_operator_codes) =
                            prepared_operator_codes
                        {
                            object_writer.write::<_, _, 4>(&prepared_operator_codes);
                        }
                        if let ::core::option::Option::Some(prepared_subgraphs) = prepared_subgraphs
                        {
                            object_writer.write::<_, _, 4>(&prepared_subgraphs);
                        }
                        if let ::core::option::Option::Some(prepared_description) =
                            prepared_description
                        {
                            object_writer.write::<_, _, 4>(&prepared_description);
                        }
                        if let ::core::option::Option::Some(prepared_buffers) = prepared_buffers {
                            object_writer.write::<_, _, 4>(&prepared_buffers);
                        }
                    });
                }
                builder.current_offset()
            }
        }

        impl ::planus::WriteAs<::planus::Offset<Model>> for Model {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Model> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl ::planus::WriteAsOptional<::planus::Offset<Model>> for Model {
            type Prepared = ::planus::Offset<Self>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Model>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl ::planus::WriteAsOffset<Model> for Model {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Model> {
                Model::create(
                    builder,
                    self.version,
                    &self.operator_codes,
                    &self.subgraphs,
                    &self.description,
                    &self.buffers,
                )
            }
        }

        /// Builder for serializing an instance of the [Model] type.
        ///
        /// Can be created using the [Model::builder] method.
        #[derive(Debug)]
        #[must_use]
        pub struct ModelBuilder<State>(State);

        impl ModelBuilder<()> {
            /// Setter for the [`version` field](Model#structfield.version).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn version<T0>(self, value: T0) -> ModelBuilder<(T0,)>
            where
                T0: ::planus::WriteAsDefault<u32, u32>,
            {
                ModelBuilder((value,))
            }

            /// Sets the [`version` field](Model#structfield.version) to the default value.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn version_as_default(self) -> ModelBuilder<(::planus::DefaultValue,)> {
                self.version(::planus::DefaultValue)
            }
        }

        impl<T0> ModelBuilder<(T0,)> {
            /// Setter for the [`operator_codes` field](Model#structfield.operator_codes).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn operator_codes<T1>(self, value: T1) -> ModelBuilder<(T0, T1)>
            where
                T1: ::planus::WriteAsOptional<
                    ::planus::Offset<[::planus::Offset<self::OperatorCode>]>,
                >,
            {
                let (v0,) = self.0;
                ModelBuilder((v0, value))
            }

            /// Sets the [`operator_codes` field](Model#structfield.operator_codes) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn operator_codes_as_null(self) -> ModelBuilder<(T0, ())> {
                self.operator_codes(())
            }
        }

        impl<T0, T1> ModelBuilder<(T0, T1)> {
            /// Setter for the [`subgraphs` field](Model#structfield.subgraphs).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn subgraphs<T2>(self, value: T2) -> ModelBuilder<(T0, T1, T2)>
            where
                T2: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::SubGraph>]>>,
            {
                let (v0, v1) = self.0;
                ModelBuilder((v0, v1, value))
            }

            /// Sets the [`subgraphs` field](Model#structfield.subgraphs) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn subgraphs_as_null(self) -> ModelBuilder<(T0, T1, ())> {
                self.subgraphs(())
            }
        }

        impl<T0, T1, T2> ModelBuilder<(T0, T1, T2)> {
            /// Setter for the [`description` field](Model#structfield.description).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn description<T3>(self, value: T3) -> ModelBuilder<(T0, T1, T2, T3)>
            where
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
            {
                let (v0, v1, v2) = self.0;
                ModelBuilder((v0, v1, v2, value))
            }

            /// Sets the [`description` field](Model#structfield.description) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn description_as_null(self) -> ModelBuilder<(T0, T1, T2, ())> {
                self.description(())
            }
        }

        impl<T0, T1, T2, T3> ModelBuilder<(T0, T1, T2, T3)> {
            /// Setter for the [`buffers` field](Model#structfield.buffers).
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn buffers<T4>(self, value: T4) -> ModelBuilder<(T0, T1, T2, T3, T4)>
            where
                T4: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Buffer>]>>,
            {
                let (v0, v1, v2, v3) = self.0;
                ModelBuilder((v0, v1, v2, v3, value))
            }

            /// Sets the [`buffers` field](Model#structfield.buffers) to null.
            #[inline]
            #[allow(clippy::type_complexity)]
            pub fn buffers_as_null(self) -> ModelBuilder<(T0, T1, T2, T3, ())> {
                self.buffers(())
            }
        }

        impl<T0, T1, T2, T3, T4> ModelBuilder<(T0, T1, T2, T3, T4)> {
            /// Finish writing the builder to get an [Offset](::planus::Offset) to a serialized [Model].
            #[inline]
            pub fn finish(self, builder: &mut ::planus::Builder) -> ::planus::Offset<Model>
            where
                Self: ::planus::WriteAsOffset<Model>,
            {
                ::planus::WriteAsOffset::prepare(&self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<u32, u32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::OperatorCode>]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::SubGraph>]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Buffer>]>>,
            > ::planus::WriteAs<::planus::Offset<Model>> for ModelBuilder<(T0, T1, T2, T3, T4)>
        {
            type Prepared = ::planus::Offset<Model>;

            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Model> {
                ::planus::WriteAsOffset::prepare(self, builder)
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<u32, u32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::OperatorCode>]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::SubGraph>]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Buffer>]>>,
            > ::planus::WriteAsOptional<::planus::Offset<Model>>
            for ModelBuilder<(T0, T1, T2, T3, T4)>
        {
            type Prepared = ::planus::Offset<Model>;

            #[inline]
            fn prepare(
                &self,
                builder: &mut ::planus::Builder,
            ) -> ::core::option::Option<::planus::Offset<Model>> {
                ::core::option::Option::Some(::planus::WriteAsOffset::prepare(self, builder))
            }
        }

        impl<
                T0: ::planus::WriteAsDefault<u32, u32>,
                T1: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::OperatorCode>]>>,
                T2: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::SubGraph>]>>,
                T3: ::planus::WriteAsOptional<::planus::Offset<::core::primitive::str>>,
                T4: ::planus::WriteAsOptional<::planus::Offset<[::planus::Offset<self::Buffer>]>>,
            > ::planus::WriteAsOffset<Model> for ModelBuilder<(T0, T1, T2, T3, T4)>
        {
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> ::planus::Offset<Model> {
                let (v0, v1, v2, v3, v4) = &self.0;
                Model::create(builder, v0, v1, v2, v3, v4)
            }
        }

        /// Reference to a deserialized [Model].
        #[derive(Copy, Clone)]
        pub struct ModelRef<'a>(#[allow(dead_code)] ::planus::table_reader::Table<'a>);

        impl<'a> ModelRef<'a> {
            /// Getter for the [`version` field](Model#structfield.version).
            #[inline]
            pub fn version(&self) -> ::planus::Result<u32> {
                ::core::result::Result::Ok(self.0.access(0, "Model", "version")?.unwrap_or(0))
            }

            /// Getter for the [`operator_codes` field](Model#structfield.operator_codes).
            #[inline]
            pub fn operator_codes(
                &self,
            ) -> ::planus::Result<
                ::core::option::Option<
                    ::planus::Vector<'a, ::planus::Result<self::OperatorCodeRef<'a>>>,
                >,
            > {
                self.0.access(1, "Model", "operator_codes")
            }

            /// Getter for the [`subgraphs` field](Model#structfield.subgraphs).
            #[inline]
            pub fn subgraphs(
                &self,
            ) -> ::planus::Result<
                ::core::option::Option<
                    ::planus::Vector<'a, ::planus::Result<self::SubGraphRef<'a>>>,
                >,
            > {
                self.0.access(2, "Model", "subgraphs")
            }

            /// Getter for the [`description` field](Model#structfield.description).
            #[inline]
            pub fn description(
                &self,
            ) -> ::planus::Result<::core::option::Option<&'a ::core::primitive::str>> {
                self.0.access(3, "Model", "description")
            }

            /// Getter for the [`buffers` field](Model#structfield.buffers).
            #[inline]
            pub fn buffers(
                &self,
            ) -> ::planus::Result<
                ::core::option::Option<::planus::Vector<'a, ::planus::Result<self::BufferRef<'a>>>>,
            > {
                self.0.access(4, "Model", "buffers")
            }
        }

        impl<'a> ::core::fmt::Debug for ModelRef<'a> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut f = f.debug_struct("ModelRef");
                f.field("version", &self.version());
                if let ::core::option::Option::Some(field_operator_codes) =
                    self.operator_codes().transpose()
                {
                    f.field("operator_codes", &field_operator_codes);
                }
                if let ::core::option::Option::Some(field_subgraphs) = self.subgraphs().transpose()
                {
                    f.field("subgraphs", &field_subgraphs);
                }
                if let ::core::option::Option::Some(field_description) =
                    self.description().transpose()
                {
                    f.field("description", &field_description);
                }
                if let ::core::option::Option::Some(field_buffers) = self.buffers().transpose() {
                    f.field("buffers", &field_buffers);
                }
                f.finish()
            }
        }

        impl<'a> ::core::convert::TryFrom<ModelRef<'a>> for Model {
            type Error = ::planus::Error;

            #[allow(unreachable_code)]
            fn try_from(value: ModelRef<'a>) -> ::planus::Result<Self> {
                ::core::result::Result::Ok(Self {
                    version: ::core::convert::TryInto::try_into(value.version()?)?,
                    operator_codes: if let ::core::option::Option::Some(operator_codes) =
                        value.operator_codes()?
                    {
                        ::core::option::Option::Some(operator_codes.to_vec_result()?)
                    } else {
                        ::core::option::Option::None
                    },
                    subgraphs: if let ::core::option::Option::Some(subgraphs) = value.subgraphs()? {
                        ::core::option::Option::Some(subgraphs.to_vec_result()?)
                    } else {
                        ::core::option::Option::None
                    },
                    description: value.description()?.map(::core::convert::Into::into),
                    buffers: if let ::core::option::Option::Some(buffers) = value.buffers()? {
                        ::core::option::Option::Some(buffers.to_vec_result()?)
                    } else {
                        ::core::option::Option::None
                    },
                })
            }
        }

        impl<'a> ::planus::TableRead<'a> for ModelRef<'a> {
            #[inline]
            fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::core::result::Result<Self, ::planus::errors::ErrorKind> {
                ::core::result::Result::Ok(Self(::planus::table_reader::Table::from_buffer(
                    buffer, offset,
                )?))
            }
        }

        impl<'a> ::planus::VectorReadInner<'a> for ModelRef<'a> {
            type Error = ::planus::Error;
            const STRIDE: usize = 4;

            unsafe fn from_buffer(
                buffer: ::planus::SliceWithStartOffset<'a>,
                offset: usize,
            ) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(buffer, offset).map_err(|error_kind| {
                    error_kind.with_error_location("[ModelRef]", "get", buffer.offset_from_start)
                })
            }
        }

        /// # Safety
        /// The planus compiler generates implementations that initialize
        /// the bytes in `write_values`.
        unsafe impl ::planus::VectorWrite<::planus::Offset<Model>> for Model {
            type Value = ::planus::Offset<Model>;
            const STRIDE: usize = 4;
            #[inline]
            fn prepare(&self, builder: &mut ::planus::Builder) -> Self::Value {
                ::planus::WriteAs::prepare(self, builder)
            }

            #[inline]
            unsafe fn write_values(
                values: &[::planus::Offset<Model>],
                bytes: *mut ::core::mem::MaybeUninit<u8>,
                buffer_position: u32,
            ) {
                let bytes = bytes as *mut [::core::mem::MaybeUninit<u8>; 4];
                for (i, v) in ::core::iter::Iterator::enumerate(values.iter()) {
                    ::planus::WriteAsPrimitive::write(
                        v,
                        ::planus::Cursor::new(unsafe { &mut *bytes.add(i) }),
                        buffer_position - (Self::STRIDE * i) as u32,
                    );
                }
            }
        }

        impl<'a> ::planus::ReadAsRoot<'a> for ModelRef<'a> {
            fn read_as_root(slice: &'a [u8]) -> ::planus::Result<Self> {
                ::planus::TableRead::from_buffer(
                    ::planus::SliceWithStartOffset {
                        buffer: slice,
                        offset_from_start: 0,
                    },
                    0,
                )
                .map_err(|error_kind| {
                    error_kind.with_error_location("[ModelRef]", "read_as_root", 0)
                })
            }
        }
    }
}
